// Every layer's Backward against finite differences of its Forward, in f64 on the cpu
// (tolerances in gradient_check.h).
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/block.h"
#include "runtime/nn/cross_entropy.h"
#include "runtime/nn/embedding.h"
#include "runtime/nn/gelu.h"
#include "runtime/nn/layer_norm.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/mlp.h"
#include "runtime/nn/splittable_linear.h"
#include "runtime/nn/sublayer.h"
#include "tests/runtime/nn/gradient_check.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::Dot;
using testing::ExpectGradientMatches;
using testing::ExpectParameterGradientsMatch;
using testing::MakeTensor;
using testing::RandomF64;
using testing::RandomizeParameters;

constexpr DType kF64 = DType::kF64;

// Checks d(sum(Forward(x) * r))/dx and /dparameters for a layer mapping x [B, T, C] to a
// tensor. `forward` and `backward` wrap the layer's calls.
template <typename Layer>
void CheckLayer(Layer& layer, const Tensor& x,
                const std::function<absl::StatusOr<Tensor>(const Tensor&)>& forward,
                const std::function<absl::StatusOr<Tensor>(const Tensor&)>& backward) {
  ASSERT_OK_AND_ASSIGN(Tensor y, forward(x));
  const Tensor r = RandomF64(y.shape(), 99);
  ASSERT_OK(layer.ZeroGrad());
  ASSERT_OK_AND_ASSIGN(Tensor dx, backward(r));
  const auto objective = [&] { return Dot(forward(x).value(), r); };
  ExpectGradientMatches(x, dx, objective, "input");
  ExpectParameterGradientsMatch(layer, objective);
}

TEST(LayerGradient, Linear) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto fc,
                       Linear::Create({.in_features = 6, .out_features = 5, .dtype = kF64}, init));
  RandomizeParameters(*fc, 10);
  CheckLayer(
      *fc, RandomF64({2, 3, 6}, 1), [&](const Tensor& x) { return fc->Forward(x); },
      [&](const Tensor& dy) { return fc->Backward(dy); });
}

TEST(LayerGradient, LinearWithGelu) {
  for (const bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with bias" : "without bias");
    ParameterInitializer init(1);
    ASSERT_OK_AND_ASSIGN(auto fc, Linear::Create({.in_features = 6,
                                                  .out_features = 5,
                                                  .bias = bias,
                                                  .dtype = kF64,
                                                  .activation = LinearActivation::kGelu},
                                                 init));
    RandomizeParameters(*fc, 11);
    CheckLayer(
        *fc, RandomF64({2, 3, 6}, 1, 3.0), [&](const Tensor& x) { return fc->Forward(x); },
        [&](const Tensor& dy) { return fc->Backward(dy); });
  }
}

// Sets the f32 cpu tensor `t` to RandomF64's values.
void SetRandomF32(const Tensor& t, uint64_t seed, double scale = 1.0) {
  const Tensor r = RandomF64(t.shape(), seed, scale);
  const double* in = static_cast<const double*>(r.raw_data());
  float* out = static_cast<float*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<float>(in[i]);
}

Tensor RandomF32(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::Empty(shape, DType::kF32).value();
  SetRandomF32(t, seed, scale);
  return t;
}

// Two contiguous cpu tensors of one dtype and shape hold the same bytes.
::testing::AssertionResult SameBits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    return ::testing::AssertionFailure() << a.DebugString() << " vs " << b.DebugString();
  }
  if (std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "the values differ";
  }
  return ::testing::AssertionSuccess();
}

// On the cpu a Linear with GELU is a Linear and then a Gelu: the same kernels, in order.
TEST(LinearActivation, GeluIsLinearThenGeluBitForBit) {
  ParameterInitializer i1(3), i2(3);
  ASSERT_OK_AND_ASSIGN(
      auto fused,
      Linear::Create({.in_features = 6, .out_features = 40, .activation = LinearActivation::kGelu},
                     i1));
  ASSERT_OK_AND_ASSIGN(auto plain, Linear::Create({.in_features = 6, .out_features = 40}, i2));
  for (Module* m : {static_cast<Module*>(fused.get()), static_cast<Module*>(plain.get())}) {
    uint64_t seed = 12;
    for (const NamedParameter& p : m->Parameters()) {
      SetRandomF32(p.parameter->value, seed++, 0.5);
    }
  }
  Gelu gelu(DType::kF32);
  const Tensor x = RandomF32({3, 7, 6}, 6, 3.0);
  const Tensor dy = RandomF32({3, 7, 40}, 7);
  ASSERT_OK(fused->ZeroGrad());
  ASSERT_OK(plain->ZeroGrad());
  ASSERT_OK_AND_ASSIGN(const Tensor y, fused->Forward(x));
  ASSERT_OK_AND_ASSIGN(const Tensor h, plain->Forward(x));
  ASSERT_OK_AND_ASSIGN(const Tensor want_y, gelu.Forward(h));
  ASSERT_OK_AND_ASSIGN(const Tensor dx, fused->Backward(dy));
  ASSERT_OK_AND_ASSIGN(const Tensor dh, gelu.Backward(dy));
  ASSERT_OK_AND_ASSIGN(const Tensor want_dx, plain->Backward(dh));
  EXPECT_EQ(y.dtype(), DType::kF32);
  EXPECT_TRUE(SameBits(y, want_y)) << "output";
  EXPECT_TRUE(SameBits(dx, want_dx)) << "input gradient";
  const auto got = fused->Parameters(), want = plain->Parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(SameBits(got[i].parameter->grad, want[i].parameter->grad)) << got[i].name;
  }
}

// The MLP's pair: c_fc with GELU, then c_proj writing its input gradient as an operand.
struct GeluPair {
  std::unique_ptr<Linear> c_fc, c_proj;
};

GeluPair MakeGeluPair(uint64_t seed) {
  ParameterInitializer init(seed);
  GeluPair pair{
      Linear::Create({.in_features = 6, .out_features = 24, .activation = LinearActivation::kGelu},
                     init)
          .value(),
      Linear::Create({.in_features = 24, .out_features = 6, .input_gradient_operand = true}, init)
          .value()};
  uint64_t p = 20;
  for (Module* m :
       {static_cast<Module*>(pair.c_fc.get()), static_cast<Module*>(pair.c_proj.get())}) {
    for (const NamedParameter& np : m->Parameters()) SetRandomF32(np.parameter->value, p++, 0.5);
    EXPECT_OK(m->ZeroGrad());
  }
  return pair;
}

// On the cpu the GELU's gradient handed from c_proj to c_fc (linear_sublayer.h) gives the bits
// of c_fc->Backward(c_proj->Backward(dy)): the same kernels, moved from one layer to the other.
TEST(LinearSublayer, GeluHandOffIsBackwardInSequenceBitForBit) {
  GeluPair handed = MakeGeluPair(5), sequence = MakeGeluPair(5);
  const Tensor x = RandomF32({3, 7, 6}, 6, 3.0);
  const Tensor dy = RandomF32({3, 7, 6}, 7);
  for (GeluPair* pair : {&handed, &sequence}) {
    ASSERT_OK_AND_ASSIGN(const Tensor g, pair->c_fc->Forward(x));
    ASSERT_OK(pair->c_proj->Forward(g).status());
  }
  ASSERT_OK_AND_ASSIGN(const Tensor h, handed.c_fc->Preactivation());
  EXPECT_EQ(h.shape(), Shape({3, 7, 24}));
  ASSERT_OK_AND_ASSIGN(const Tensor dh, handed.c_proj->BackwardThroughGelu(dy, h));
  ASSERT_OK_AND_ASSIGN(const Tensor dx, handed.c_fc->BackwardFromPreactivation(dh));
  ASSERT_OK_AND_ASSIGN(const Tensor dg, sequence.c_proj->Backward(dy));
  ASSERT_OK_AND_ASSIGN(const Tensor want_dx, sequence.c_fc->Backward(dg));
  EXPECT_TRUE(SameBits(dx, want_dx)) << "input gradient";
  for (auto [got, want] : {std::pair{handed.c_fc.get(), sequence.c_fc.get()},
                           std::pair{handed.c_proj.get(), sequence.c_proj.get()}}) {
    const auto g = got->Parameters(), w = want->Parameters();
    ASSERT_EQ(g.size(), w.size());
    for (size_t i = 0; i < g.size(); ++i) {
      EXPECT_TRUE(SameBits(g[i].parameter->grad, w[i].parameter->grad)) << g[i].name;
    }
  }
}

// The hand-off's refusals name the layer and what is wrong, and add to no gradient.
TEST(LinearSublayer, GeluHandOffErrorsNameTheProblem) {
  GeluPair pair = MakeGeluPair(6);
  const absl::StatusOr<Tensor> early = pair.c_fc->Preactivation();
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(early.status().message()), ::testing::HasSubstr("before Forward"));
  const Tensor x = RandomF32({2, 6}, 8);
  ASSERT_OK_AND_ASSIGN(const Tensor g, pair.c_fc->Forward(x));
  ASSERT_OK(pair.c_proj->Forward(g).status());
  const absl::StatusOr<Tensor> none = pair.c_proj->Preactivation();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(none.status().message()), ::testing::HasSubstr("without a GELU"));
  const Tensor dy = RandomF32({2, 6}, 9);
  EXPECT_EQ(pair.c_proj->BackwardFromPreactivation(dy).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Another width, another row count, another dtype.
  ASSERT_OK_AND_ASSIGN(const Tensor f64, Tensor::Empty({2, 24}, kF64));
  for (const Tensor& h : {RandomF32({2, 23}, 10), RandomF32({3, 24}, 11), f64}) {
    const absl::StatusOr<Tensor> wrong = pair.c_proj->BackwardThroughGelu(dy, h);
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument) << h.DebugString();
    EXPECT_THAT(std::string(wrong.status().message()),
                ::testing::HasSubstr("Linear preactivation"));
  }
  for (const NamedParameter& np : pair.c_proj->Parameters()) {
    ASSERT_OK_AND_ASSIGN(const Tensor zero, Tensor::Empty(np.parameter->grad.shape(), DType::kF32));
    ASSERT_OK(Fill(zero, 0.0));
    EXPECT_TRUE(SameBits(np.parameter->grad, zero)) << np.name << " was added to";
  }
}

// The cpu backward pass sums the weight's and bias's gradients in chunks of 32 rows
// (cpu_layer_norm.cc): 6 rows are one chunk; 80 are three, the last one short.
TEST(LayerGradient, LayerNorm) {
  for (const Shape& shape : {Shape{2, 3, 7}, Shape{2, 40, 7}}) {
    SCOPED_TRACE(shape.ToString());
    ASSERT_OK_AND_ASSIGN(auto ln, LayerNorm::Create({.dim = 7, .dtype = kF64}));
    RandomizeParameters(*ln, 20);
    CheckLayer(
        *ln, RandomF64(shape, 2, 2.0), [&](const Tensor& x) { return ln->Forward(x); },
        [&](const Tensor& dy) { return ln->Backward(dy); });
  }
}

// BackwardWithSkip is Backward plus the skip, bit for bit (f64 here; the f32 cpu path is the
// same code), and the parameter gradients are Backward's.
TEST(LayerGradient, LayerNormBackwardWithSkipIsBackwardPlusTheSkip) {
  ASSERT_OK_AND_ASSIGN(auto joined, LayerNorm::Create({.dim = 7, .dtype = kF64}));
  ASSERT_OK_AND_ASSIGN(auto plain, LayerNorm::Create({.dim = 7, .dtype = kF64}));
  RandomizeParameters(*joined, 21);
  RandomizeParameters(*plain, 21);
  const Tensor x = RandomF64({2, 3, 7}, 5, 2.0), dy = RandomF64({2, 3, 7}, 6);
  const Tensor skip = RandomF64({2, 3, 7}, 7);
  ASSERT_OK(joined->Forward(x).status());
  ASSERT_OK(plain->Forward(x).status());
  ASSERT_OK_AND_ASSIGN(const Tensor with_skip, joined->BackwardWithSkip(dy, skip));
  ASSERT_OK_AND_ASSIGN(const Tensor dx, plain->Backward(dy));
  const auto* a = static_cast<const double*>(with_skip.raw_data());
  const auto* d = static_cast<const double*>(dx.raw_data());
  const auto* k = static_cast<const double*>(skip.raw_data());
  for (int64_t i = 0; i < dx.numel(); ++i) EXPECT_EQ(a[i], k[i] + d[i]) << i;
  for (size_t p = 0; p < 2; ++p) {
    const Tensor& g1 = joined->Parameters()[p].parameter->grad;
    const Tensor& g2 = plain->Parameters()[p].parameter->grad;
    EXPECT_EQ(std::memcmp(g1.raw_data(), g2.raw_data(), g1.nbytes()), 0) << p;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(joined->BackwardWithSkip(dy, RandomF64({2, 7}, 8)).status()));
}

// A Linear with input_gradient_operand (an MLP's c_proj): under bf16 products the cpu's
// emulation rounds dx to bf16 values, bit for bit those of a plain Linear's dx; under f32
// products dx is the plain Linear's, bit for bit. Either way the weight gradients are the same.
TEST(LayerGradient, LinearInputGradientOperandIsRoundedUnderBf16Only) {
  for (const MatmulPrecision precision : {MatmulPrecision::kF32, MatmulPrecision::kBf16}) {
    SCOPED_TRACE(MatmulPrecisionName(precision));
    testing::ScopedMatmulPrecision scoped(precision);
    ParameterInitializer i1(9), i2(9);
    ASSERT_OK_AND_ASSIGN(
        auto with,
        Linear::Create({.in_features = 12, .out_features = 5, .input_gradient_operand = true}, i1));
    ASSERT_OK_AND_ASSIGN(auto plain, Linear::Create({.in_features = 12, .out_features = 5}, i2));
    std::vector<float> xs(3 * 12), dys(3 * 5);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.37f * static_cast<float>(i % 7) - 1.1f;
    for (size_t i = 0; i < dys.size(); ++i) dys[i] = 0.29f * static_cast<float>(i % 5) - 0.6f;
    ASSERT_OK_AND_ASSIGN(const Tensor x, MakeTensor(Device::Cpu(), {3, 12}, xs));
    ASSERT_OK_AND_ASSIGN(const Tensor dy, MakeTensor(Device::Cpu(), {3, 5}, dys));
    ASSERT_OK(with->Forward(x).status());
    ASSERT_OK(plain->Forward(x).status());
    ASSERT_OK_AND_ASSIGN(const Tensor dx, with->Backward(dy));
    ASSERT_OK_AND_ASSIGN(const Tensor dx_plain, plain->Backward(dy));
    ASSERT_EQ(dx.dtype(), DType::kF32);
    const auto* a = static_cast<const float*>(dx.raw_data());
    const auto* b = static_cast<const float*>(dx_plain.raw_data());
    bool rounded_any = false;
    for (int64_t i = 0; i < dx.numel(); ++i) {
      const float want =
          precision == MatmulPrecision::kBf16 ? BFloat16::FromFloat(b[i]).ToFloat() : b[i];
      EXPECT_EQ(a[i], want) << i;
      rounded_any |= want != b[i];
    }
    EXPECT_EQ(rounded_any, precision == MatmulPrecision::kBf16);
    const Tensor& g1 = with->weight().grad;
    const Tensor& g2 = plain->weight().grad;
    EXPECT_EQ(std::memcmp(g1.raw_data(), g2.raw_data(), g1.nbytes()), 0);
  }
}

TEST(LayerGradient, Gelu) {
  Gelu gelu(kF64);
  CheckLayer(
      gelu, RandomF64({4, 25}, 3, 3.0), [&](const Tensor& x) { return gelu.Forward(x); },
      [&](const Tensor& dy) { return gelu.Backward(dy); });
}

// The cpu attention's products skip the hidden half of the square in blocks of 64 positions
// (cpu_attention.cc): 5 positions are one block; 130 cross two block edges and end inside a
// third block, over 4 (sequence, head) items, so that a thread's later items run on the
// scratch its earlier ones left.
TEST(LayerGradient, CausalSelfAttention) {
  struct Case {
    int64_t n_embd, batch, seq;
  };
  for (const Case& c : {Case{8, 2, 5}, Case{4, 2, 130}}) {
    SCOPED_TRACE(absl::StrCat("T ", c.seq));
    ParameterInitializer init(1);
    ASSERT_OK_AND_ASSIGN(auto attn, CausalSelfAttention::Create(
                                        {.n_embd = c.n_embd, .n_head = 2, .dtype = kF64}, init));
    RandomizeParameters(*attn, 30);
    CheckLayer(
        *attn, RandomF64({c.batch, c.seq, c.n_embd}, 4),
        [&](const Tensor& x) { return attn->Forward(x); },
        [&](const Tensor& dy) { return attn->Backward(dy); });
  }
}

TEST(LayerGradient, Mlp) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto mlp, Mlp::Create({.n_embd = 6, .dtype = kF64}, init));
  RandomizeParameters(*mlp, 40);
  CheckLayer(
      *mlp, RandomF64({2, 3, 6}, 5), [&](const Tensor& x) { return mlp->Forward(x); },
      [&](const Tensor& dy) { return mlp->Backward(dy); });
}

// ForwardAdding (sublayer.h) adds a residual stream to the output: its gradients are Forward's,
// whether a Linear's product makes the sum or a sum follows the branch (GELU's Linear).
TEST(LayerGradient, ForwardAddingOfEachSublayer) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto fc,
                       Linear::Create({.in_features = 6, .out_features = 5, .dtype = kF64}, init));
  ASSERT_OK_AND_ASSIGN(auto gelu_fc, Linear::Create({.in_features = 6,
                                                     .out_features = 5,
                                                     .dtype = kF64,
                                                     .activation = LinearActivation::kGelu},
                                                    init));
  ASSERT_OK_AND_ASSIGN(auto mlp, Mlp::Create({.n_embd = 6, .dtype = kF64}, init));
  ASSERT_OK_AND_ASSIGN(
      auto attn, CausalSelfAttention::Create({.n_embd = 6, .n_head = 2, .dtype = kF64}, init));
  const Tensor x = RandomF64({2, 3, 6}, 7);
  uint64_t seed = 60;
  for (Sublayer* layer :
       std::initializer_list<Sublayer*>{fc.get(), gelu_fc.get(), mlp.get(), attn.get()}) {
    RandomizeParameters(*layer, seed++);
    ASSERT_OK_AND_ASSIGN(const Tensor plain, layer->Forward(x));
    const Tensor residual = RandomF64(plain.shape(), seed++);
    CheckLayer(
        *layer, x, [&](const Tensor& in) { return layer->ForwardAdding(in, residual); },
        [&](const Tensor& dy) { return layer->Backward(dy); });
    ASSERT_OK_AND_ASSIGN(const Tensor sum, layer->ForwardAdding(x, residual));
    const auto* got = static_cast<const double*>(sum.raw_data());
    const auto* y = static_cast<const double*>(plain.raw_data());
    const auto* r = static_cast<const double*>(residual.raw_data());
    for (int64_t i = 0; i < sum.numel(); ++i) {
      ASSERT_NEAR(got[i], y[i] + r[i], 1e-14 * (1 + std::abs(y[i] + r[i]))) << i;
    }
  }
  // The residual must be the output's shape.
  ASSERT_OK_AND_ASSIGN(const Tensor wrong, Tensor::Empty({2, 3, 6}, kF64));
  const absl::Status s = fc->ForwardAdding(x, wrong).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("Linear residual"), absl::string_view::npos) << s;
}

class BlockGradient : public ::testing::TestWithParam<bool> {};

TEST_P(BlockGradient, MatchesFiniteDifferences) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(
      auto block,
      Block::Create({.n_embd = 8, .n_head = 2, .recompute = GetParam(), .dtype = kF64}, init));
  RandomizeParameters(*block, 50);
  CheckLayer(
      *block, RandomF64({2, 4, 8}, 6), [&](const Tensor& x) { return block->Forward(x); },
      [&](const Tensor& dy) { return block->Backward(dy); });
}

INSTANTIATE_TEST_SUITE_P(StoredAndRecomputed, BlockGradient, ::testing::Bool());

TEST(LayerGradient, EmbeddingFromAWindowOfTokenColumns) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto wte, Embedding::Create({.rows = 7, .dim = 4, .dtype = kF64}, init));
  // [2, 5] ids, columns [1, 4) used: a repeated id accumulates.
  ASSERT_OK_AND_ASSIGN(Tensor ids, MakeTensor(Device::Cpu(), {2, 5},
                                              std::vector<uint16_t>{6, 3, 3, 0, 6, 5, 1, 2, 3, 4}));
  const TokenWindow window{ids, 1, 3};
  ASSERT_OK_AND_ASSIGN(Tensor y, wte->Forward(window));
  const Tensor r = RandomF64(y.shape(), 7);
  ASSERT_OK(wte->Backward(r));
  ExpectParameterGradientsMatch(*wte, [&] { return Dot(wte->Forward(window).value(), r); });
  // Rows 5 and 6 are outside the window: no gradient.
  const double* g = static_cast<const double*>(wte->weight().grad.raw_data());
  for (int i = 5 * 4; i < 7 * 4; ++i) EXPECT_EQ(g[i], 0.0) << i;
}

TEST(LayerGradient, PositionEmbedding) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto wpe,
                       PositionEmbedding::Create({.rows = 6, .dim = 3, .dtype = kF64}, init));
  const Tensor x = RandomF64({2, 4, 3}, 8);
  const Tensor r = RandomF64({2, 4, 3}, 9);
  const auto objective = [&] {
    const Tensor y = RandomF64({2, 4, 3}, 8);  // A fresh copy of x: Forward works in place.
    EXPECT_OK(wpe->Forward(y));
    return Dot(y, r);
  };
  ASSERT_OK(wpe->Backward(r));
  ExpectParameterGradientsMatch(*wpe, objective);
}

// 6 rows of logits over 5 classes padded to 8 columns, and their targets.
struct PaddedLogits {
  static constexpr int64_t kVocab = 5, kPadded = 8;
  Tensor targets =
      MakeTensor(Device::Cpu(), {2, 4}, std::vector<int32_t>{0, 4, 1, 2, 9, 3, 0, 4}).value();
  TokenWindow window{targets, 1, 3};  // 6 rows.
  Tensor logits = RandomF64({6, kPadded}, 10, 3.0);
  Tensor probe = RandomF64({6, kPadded}, 10, 3.0);  // The same values, kept intact.
};

TEST(LayerGradient, SoftmaxCrossEntropyIgnoresThePaddedColumns) {
  const PaddedLogits padded;
  constexpr int64_t kVocab = PaddedLogits::kVocab, kPadded = PaddedLogits::kPadded;
  SoftmaxCrossEntropy ce(kVocab);
  const TokenWindow& window = padded.window;
  const Tensor& logits = padded.logits;
  const Tensor& probe = padded.probe;
  ASSERT_OK_AND_ASSIGN(double loss, ce.Forward(logits, window));
  // The padding does not change the loss.
  SoftmaxCrossEntropy unpadded(kVocab);
  const Tensor narrow = Tensor::Empty({6, kVocab}, kF64).value();
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = 0; c < kVocab; ++c) {
      static_cast<double*>(narrow.raw_data())[r * kVocab + c] =
          static_cast<const double*>(probe.raw_data())[r * kPadded + c];
    }
  }
  ASSERT_OK_AND_ASSIGN(double narrow_loss, unpadded.Forward(narrow, window));
  EXPECT_DOUBLE_EQ(loss, narrow_loss);
  ASSERT_OK(ce.Backward(2.0));  // d(2 * loss): logits now hold the gradient.
  ExpectGradientMatches(
      probe, logits, [&] { return 2.0 * ce.Forward(probe, window).value(); }, "logits");
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = kVocab; c < kPadded; ++c) {
      EXPECT_EQ(static_cast<const double*>(logits.raw_data())[r * kPadded + c], 0.0);
    }
  }
}

// The gradient that ForwardWithGradient writes (to a buffer of its own: the logits stay as they
// are) is d(loss)/dlogits by finite differences, with the padding 0, and its loss is Forward's.
TEST(LayerGradient, SoftmaxCrossEntropyForwardWithGradient) {
  const PaddedLogits in;
  SoftmaxCrossEntropy ce(in.kVocab);
  ASSERT_OK_AND_ASSIGN(Tensor gradient, Tensor::Empty({6, in.kPadded}, kF64));
  ASSERT_OK_AND_ASSIGN(const double loss, ce.ForwardWithGradient(in.logits, in.window, gradient));
  EXPECT_EQ(loss, ce.Forward(in.probe, in.window).value());
  EXPECT_EQ(testing::ReadTensor<double>(in.logits).value(),
            testing::ReadTensor<double>(in.probe).value());
  ExpectGradientMatches(
      in.probe, gradient, [&] { return ce.Forward(in.probe, in.window).value(); }, "logits");
  const std::vector<double> g = testing::ReadTensor<double>(gradient).value();
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = in.kVocab; c < in.kPadded; ++c) EXPECT_EQ(g[r * in.kPadded + c], 0.0);
  }
  ASSERT_OK(ce.Backward(1.0));  // Forward's, above: ForwardWithGradient kept nothing.
  EXPECT_TRUE(absl::IsFailedPrecondition(ce.Backward(1.0)));
}

// In f32, in place: the loss has Forward's bits, and the gradient is within 4 f32 ulps of the
// exact one (computed in double here); Backward(1)'s, for comparison, within 16 (it recomputes
// the exponentials from a log-sum-exp rounded to f32). A gradient of another dtype, or one
// overlapping the logits without being them, is refused.
TEST(LayerGradient, SoftmaxCrossEntropyForwardWithGradientInPlace) {
  constexpr int64_t kVocab = 1000, kPadded = 1024, kRows = 12;
  std::vector<float> values(kRows * kPadded);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 4.0f * std::sin(0.37f * i);
  std::vector<int32_t> ids(kRows + 1);
  for (int64_t i = 0; i <= kRows; ++i) ids[i] = static_cast<int32_t>((i * 331) % kVocab);
  ASSERT_OK_AND_ASSIGN(Tensor targets, MakeTensor(Device::Cpu(), {1, kRows + 1}, ids));
  const TokenWindow window{targets, 1, kRows};
  ASSERT_OK_AND_ASSIGN(Tensor fused, MakeTensor(Device::Cpu(), {kRows, kPadded}, values));
  ASSERT_OK_AND_ASSIGN(Tensor separate, MakeTensor(Device::Cpu(), {kRows, kPadded}, values));
  SoftmaxCrossEntropy ce(kVocab);
  ASSERT_OK_AND_ASSIGN(const double fused_loss, ce.ForwardWithGradient(fused, window, fused));
  ASSERT_OK_AND_ASSIGN(const double loss, ce.Forward(separate, window));
  ASSERT_OK(ce.Backward(1.0));
  EXPECT_EQ(fused_loss, loss);
  const std::vector<float> a = testing::ReadTensor<float>(fused).value();
  const std::vector<float> b = testing::ReadTensor<float>(separate).value();
  constexpr double kUlp = std::numeric_limits<float>::epsilon();
  for (int64_t r = 0; r < kRows; ++r) {
    const float* x = values.data() + r * kPadded;
    double sum = 0;
    for (int64_t j = 0; j < kVocab; ++j) sum += std::exp(static_cast<double>(x[j]));
    for (int64_t j = 0; j < kPadded; ++j) {
      const double p = j < kVocab ? std::exp(static_cast<double>(x[j])) / sum : 0.0;
      const double want = (p - (j == ids[r + 1] ? 1.0 : 0.0)) / kRows;
      const int64_t i = r * kPadded + j;
      ASSERT_NEAR(a[i], want, 4 * kUlp * std::abs(want)) << "row " << r << " column " << j;
      ASSERT_NEAR(b[i], want, 16 * kUlp * std::abs(want)) << "row " << r << " column " << j;
    }
  }

  ASSERT_OK_AND_ASSIGN(Tensor f64, Tensor::Empty({kRows, kPadded}, kF64));
  const absl::Status wrong_dtype = ce.ForwardWithGradient(fused, window, f64).status();
  EXPECT_TRUE(absl::IsInvalidArgument(wrong_dtype)) << wrong_dtype;
  EXPECT_NE(wrong_dtype.message().find("gradient"), absl::string_view::npos) << wrong_dtype;
  ASSERT_OK_AND_ASSIGN(Tensor shifted, fused.View(1, {kRows - 1, kPadded}));
  ASSERT_OK_AND_ASSIGN(Tensor fewer, fused.View(0, {kRows - 1, kPadded}));
  const absl::Status overlap =
      ce.ForwardWithGradient(fewer, {targets, 1, kRows - 1}, shifted).status();
  EXPECT_TRUE(absl::IsInvalidArgument(overlap)) << overlap;
  EXPECT_NE(overlap.message().find("overlaps"), absl::string_view::npos) << overlap;
}

TEST(LayerErrors, NameTheLayerAndTheShape) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(auto fc, Linear::Create({.in_features = 6, .out_features = 5}, init));
  ASSERT_OK_AND_ASSIGN(Tensor x, Tensor::Empty({2, 7}, DType::kF32));
  const absl::Status s = fc->Forward(x).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("Linear input"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("[2, 7]"), absl::string_view::npos) << s;
  EXPECT_TRUE(absl::IsFailedPrecondition(fc->Backward(x).status()));
  // The CUDA layers compute in f32 only; a build without CUDA has no CUDA layers at all.
  const absl::Status f64_on_cuda =
      Linear::Create(
          {.in_features = 1, .out_features = 1, .dtype = kF64, .device = Device::Cuda(0)}, init)
          .status();
  EXPECT_TRUE(BuiltWithCuda() ? absl::IsUnimplemented(f64_on_cuda)
                              : absl::IsFailedPrecondition(f64_on_cuda))
      << f64_on_cuda;
  // A row-parallel layer's outputs are partial sums until all-reduced: no activation.
  const absl::Status row_gelu = CreateSplittableLinear({.in_features = 4,
                                                        .out_features = 4,
                                                        .split = LinearSplit::kRows,
                                                        .activation = LinearActivation::kGelu},
                                                       init)
                                    .status();
  EXPECT_TRUE(absl::IsInvalidArgument(row_gelu)) << row_gelu;
  const absl::Status row_operand = CreateSplittableLinear({.in_features = 4,
                                                           .out_features = 4,
                                                           .split = LinearSplit::kRows,
                                                           .output_operand = true},
                                                          init)
                                       .status();
  EXPECT_TRUE(absl::IsInvalidArgument(row_operand)) << row_operand;
  SoftmaxCrossEntropy ce(5);
  ASSERT_OK_AND_ASSIGN(Tensor ids,
                       MakeTensor(Device::Cpu(), {1, 3}, std::vector<int32_t>{1, 5, 2}));
  ASSERT_OK_AND_ASSIGN(Tensor logits, Tensor::Empty({2, 8}, DType::kF32));
  const absl::Status bad_id = ce.Forward(logits, {ids, 1, 2}).status();
  EXPECT_NE(bad_id.message().find("token 5 at [0, 1]"), absl::string_view::npos) << bad_id;
}

}  // namespace
}  // namespace usine
