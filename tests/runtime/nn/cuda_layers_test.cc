// Every layer's CUDA path against its cpu path, in f32, on random inputs and parameters:
// outputs, input gradients and parameter gradients (added into random starting gradients)
// within testing::kCudaRelTolerance (cuda_compare.h), over odd sizes (rows not a multiple of a
// block, widths not a multiple of 32, T = 1). The kernel-level cases write into NaN-poisoned
// outputs, so an element a kernel misses fails. Label `gpu`: skipped without a CUDA device.
#include "runtime/nn/internal/cuda_layers.h"

#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/block.h"
#include "runtime/nn/cross_entropy.h"
#include "runtime/nn/embedding.h"
#include "runtime/nn/gelu.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/internal/cpu_gelu.h"
#include "runtime/nn/internal/cpu_layer_norm.h"
#include "runtime/nn/layer_norm.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/mlp.h"
#include "tests/runtime/nn/cuda_compare.h"
#include "tests/testing/device_test.h"

#if USINE_CUDA_EMULATED
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#endif

namespace usine {
namespace {

namespace ni = nn_internal;
using testing::BitIdentical;
using testing::Close;
using testing::CompareLayer;
using testing::F32Tensor;
using testing::kCuda;
using testing::MakeTensor;
using testing::Poison;
using testing::RandomizeAlike;
using testing::RandomPair;
using testing::RandomValues;
using testing::RepeatingIds;
using testing::TensorPair;

class CudaLayersGpuTest : public testing::CudaDeviceTest {};

TEST_F(CudaLayersGpuTest, LinearMatchesCpu) {
  struct Case {
    Shape x;
    int64_t out;
    bool bias;
  };
  for (const Case& c : {Case{{3, 5, 37}, 45, true}, Case{{1, 1, 7}, 3, true},
                        Case{{2, 129, 64}, 33, true}, Case{{4, 9}, 17, false}}) {
    const int64_t in = c.x.dim(c.x.rank() - 1);
    ParameterInitializer i1(1), i2(1);
    ASSERT_OK_AND_ASSIGN(
        auto cpu, Linear::Create({.in_features = in, .out_features = c.out, .bias = c.bias}, i1));
    ASSERT_OK_AND_ASSIGN(
        auto cuda,
        Linear::Create({.in_features = in, .out_features = c.out, .bias = c.bias, .device = kCuda},
                       i2));
    CompareLayer<Linear>(
        *cpu, *cuda, c.x, 10, [](Linear& l, const Tensor& x) { return l.Forward(x); },
        [](Linear& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("Linear ", c.x.ToString(), " -> ", c.out));
  }
}

// Widths below, at and above a warp, not multiples of 32, and past the backward block's 256
// threads; row counts that leave a forward block (8 rows) partly empty and that span several
// backward chunks (16 rows) with a partial last one; the widest whose column sums (2 * 6136
// floats) and row-sum scratch fit the backward pass's 48 KiB of shared memory, the narrowest
// past it (6137), and a wider one (7000), whose sums are kept in global memory.
TEST_F(CudaLayersGpuTest, LayerNormMatchesCpu) {
  for (const Shape& x : {Shape{1, 1, 7}, Shape{3, 3, 33}, Shape{257, 96}, Shape{2, 300, 768},
                         Shape{1, 1, 1}, Shape{5, 6136}, Shape{3, 6137}, Shape{37, 7000}}) {
    const int64_t dim = x.dim(x.rank() - 1);
    ASSERT_OK_AND_ASSIGN(auto cpu, LayerNorm::Create({.dim = dim}));
    ASSERT_OK_AND_ASSIGN(auto cuda, LayerNorm::Create({.dim = dim, .device = kCuda}));
    CompareLayer<LayerNorm>(
        *cpu, *cuda, x, 20, [](LayerNorm& l, const Tensor& in) { return l.Forward(in); },
        [](LayerNorm& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("LayerNorm ", x.ToString()));
  }
}

// The backward pass that joins a residual stream's gradient: on CUDA the skip is added by the
// LayerNorm's own pass, with the bits of Backward's gradient plus the skip (an Add after it).
TEST_F(CudaLayersGpuTest, LayerNormBackwardWithSkipIsBackwardPlusTheSkip) {
  for (const Shape& x : {Shape{2, 300, 768}, Shape{37, 7000}}) {
    SCOPED_TRACE(x.ToString());
    const int64_t dim = x.dim(x.rank() - 1);
    ASSERT_OK_AND_ASSIGN(auto with_skip, LayerNorm::Create({.dim = dim, .device = kCuda}));
    ASSERT_OK_AND_ASSIGN(auto plain, LayerNorm::Create({.dim = dim, .device = kCuda}));
    RandomizeAlike(*with_skip, *plain, 21);
    const TensorPair in = RandomPair(x, 121, 2.0f);
    const TensorPair dy = RandomPair(x, 221);
    const TensorPair skip = RandomPair(x, 321);
    ASSERT_OK(with_skip->Forward(in.cuda).status());
    ASSERT_OK(plain->Forward(in.cuda).status());
    ASSERT_OK_AND_ASSIGN(const Tensor joined, with_skip->BackwardWithSkip(dy.cuda, skip.cuda));
    ASSERT_OK_AND_ASSIGN(const Tensor dx, plain->Backward(dy.cuda));
    ASSERT_OK_AND_ASSIGN(const Tensor sum, Tensor::Empty(x, DType::kF32, kCuda));
    ASSERT_OK(Add(skip.cuda, dx, sum));
    EXPECT_TRUE(BitIdentical(joined, sum)) << "dx";
    for (size_t p = 0; p < 2; ++p) {
      EXPECT_TRUE(BitIdentical(with_skip->Parameters()[p].parameter->grad,
                               plain->Parameters()[p].parameter->grad))
          << with_skip->Parameters()[p].name;
    }
  }
}

TEST_F(CudaLayersGpuTest, GeluMatchesCpu) {
  for (const Shape& x : {Shape{1}, Shape{3, 7, 129}, Shape{1000003}}) {
    Gelu cpu(DType::kF32), cuda(DType::kF32);
    CompareLayer<Gelu>(
        cpu, cuda, x, 30, [](Gelu& l, const Tensor& in) { return l.Forward(in); },
        [](Gelu& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("Gelu ", x.ToString()));
  }
}

TEST_F(CudaLayersGpuTest, MlpMatchesCpu) {
  ParameterInitializer i1(2), i2(2);
  ASSERT_OK_AND_ASSIGN(auto cpu, Mlp::Create({.n_embd = 24}, i1));
  ASSERT_OK_AND_ASSIGN(auto cuda, Mlp::Create({.n_embd = 24, .device = kCuda}, i2));
  CompareLayer<Mlp>(
      *cpu, *cuda, {3, 11, 24}, 40, [](Mlp& l, const Tensor& x) { return l.Forward(x); },
      [](Mlp& l, const Tensor& dy) { return l.Backward(dy); }, "Mlp");
}

TEST_F(CudaLayersGpuTest, CausalSelfAttentionMatchesCpu) {
  struct Case {
    int64_t batch, seq, n_embd, n_head;
  };
  // T = 1 (one visible position), T not a multiple of a warp, T beyond a warp (the softmax
  // rows loop), head_dim 4, 8 and 12.
  for (const Case& c :
       {Case{2, 1, 8, 2}, Case{3, 17, 24, 3}, Case{1, 64, 32, 4}, Case{2, 45, 48, 4}}) {
    ParameterInitializer i1(3), i2(3);
    ASSERT_OK_AND_ASSIGN(auto cpu,
                         CausalSelfAttention::Create({.n_embd = c.n_embd, .n_head = c.n_head}, i1));
    ASSERT_OK_AND_ASSIGN(
        auto cuda,
        CausalSelfAttention::Create({.n_embd = c.n_embd, .n_head = c.n_head, .device = kCuda}, i2));
    CompareLayer<CausalSelfAttention>(
        *cpu, *cuda, {c.batch, c.seq, c.n_embd}, 50,
        [](CausalSelfAttention& l, const Tensor& x) { return l.Forward(x); },
        [](CausalSelfAttention& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("attention B ", c.batch, " T ", c.seq, " C ", c.n_embd, " H ", c.n_head));
  }
}

TEST_F(CudaLayersGpuTest, BlockMatchesCpuWithAndWithoutRecompute) {
  for (bool recompute : {false, true}) {
    ParameterInitializer i1(4), i2(4);
    ASSERT_OK_AND_ASSIGN(auto cpu,
                         Block::Create({.n_embd = 32, .n_head = 4, .recompute = recompute}, i1));
    ASSERT_OK_AND_ASSIGN(
        auto cuda,
        Block::Create({.n_embd = 32, .n_head = 4, .recompute = recompute, .device = kCuda}, i2));
    CompareLayer<Block>(
        *cpu, *cuda, {2, 19, 32}, 60, [](Block& l, const Tensor& x) { return l.Forward(x); },
        [](Block& l, const Tensor& dy) { return l.Backward(dy); },
        recompute ? "Block (recompute)" : "Block");
  }
}

TEST_F(CudaLayersGpuTest, EmbeddingMatchesCpuBitForBit) {
  for (int64_t dim : {1, 33, 200}) {
    ParameterInitializer i1(5), i2(5);
    ASSERT_OK_AND_ASSIGN(auto cpu, Embedding::Create({.rows = 13, .dim = dim}, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda,
                         Embedding::Create({.rows = 13, .dim = dim, .device = kCuda}, i2));
    SCOPED_TRACE(absl::StrCat("dim ", dim));
    testing::ExpectEmbeddingsBitIdentical(*cpu, *cuda, 13, static_cast<int>(dim), 70);
  }
}

TEST_F(CudaLayersGpuTest, PositionEmbeddingMatchesCpu) {
  // T = 1, T = rows (the block size), and a batch larger than a column-sum chunk.
  for (const Shape& x : {Shape{2, 1, 33}, Shape{3, 16, 8}, Shape{300, 5, 7}}) {
    ParameterInitializer i1(6), i2(6);
    ASSERT_OK_AND_ASSIGN(auto cpu, PositionEmbedding::Create({.rows = 16, .dim = x.dim(2)}, i1));
    ASSERT_OK_AND_ASSIGN(
        auto cuda, PositionEmbedding::Create({.rows = 16, .dim = x.dim(2), .device = kCuda}, i2));
    RandomizeAlike(*cpu, *cuda, 80);
    const TensorPair in = RandomPair(x, 81);
    ASSERT_OK(cpu->Forward(in.cpu));
    ASSERT_OK(cuda->Forward(in.cuda));
    EXPECT_TRUE(BitIdentical(in.cuda, in.cpu)) << "forward (in place) " << x.ToString();
    const TensorPair dx = RandomPair(x, 82);
    ASSERT_OK(cpu->Backward(dx.cpu));
    ASSERT_OK(cuda->Backward(dx.cuda));
    testing::ExpectParametersClose(*cpu, *cuda, absl::StrCat("wpe ", x.ToString()));
  }
}

// The padding columns hold NaN on both devices: a kernel that reads them into the softmax
// makes the loss NaN, one that does not overwrite them leaves NaN in the gradient.
TEST_F(CudaLayersGpuTest, CrossEntropyMatchesCpuAndNeverPredictsPadding) {
  struct Case {
    int64_t rows, vocab, padded;
  };
  for (const Case& c :
       {Case{1, 5, 5}, Case{37, 40, 128}, Case{9, 500, 512}, Case{3, 50257, 50304}}) {
    SCOPED_TRACE(absl::StrCat("rows ", c.rows, " vocab ", c.vocab, " padded ", c.padded));
    std::vector<float> values = RandomValues(c.rows * c.padded, 90, 8.0f);
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int64_t j = c.vocab; j < c.padded; ++j) values[r * c.padded + j] = NAN;
    }
    const Tensor cpu_logits = F32Tensor(Device::Cpu(), {c.rows, c.padded}, values);
    const Tensor cuda_logits = F32Tensor(kCuda, {c.rows, c.padded}, values);
    const Tensor targets = RepeatingIds(1, c.rows, c.vocab, 3);
    SoftmaxCrossEntropy cpu(c.vocab), cuda(c.vocab);
    ASSERT_OK_AND_ASSIGN(double loss_cpu, cpu.Forward(cpu_logits, {targets, 0, c.rows}));
    ASSERT_OK_AND_ASSIGN(double loss_cuda, cuda.Forward(cuda_logits, {targets, 0, c.rows}));
    EXPECT_NEAR(loss_cuda, loss_cpu, 1e-5 * std::abs(loss_cpu)) << "loss";
    ASSERT_OK(cpu.Backward(0.7));
    ASSERT_OK(cuda.Backward(0.7));
    EXPECT_TRUE(Close(cuda_logits, cpu_logits)) << "gradient (padding must be 0)";
  }
}

// The gradient written by the forward pass: in f32 in place, as the cpu's; in bf16 (a product's
// operand, into a NaN-poisoned buffer) the f32 gradient's values rounded to nearest, bit for bit;
// both with Forward's loss, the same bits, and the logits left intact under the bf16 one.
TEST_F(CudaLayersGpuTest, CrossEntropyForwardWithGradientMatchesCpuInF32AndBf16) {
  struct Case {
    int64_t rows, vocab, padded;
  };
  for (const Case& c : {Case{1, 5, 5}, Case{37, 40, 128}, Case{3, 50257, 50304}}) {
    SCOPED_TRACE(absl::StrCat("rows ", c.rows, " vocab ", c.vocab, " padded ", c.padded));
    const std::vector<float> values = RandomValues(c.rows * c.padded, 91, 8.0f);
    const Shape shape{c.rows, c.padded};
    const Tensor cpu_logits = F32Tensor(Device::Cpu(), shape, values);
    const Tensor cuda_logits = F32Tensor(kCuda, shape, values);
    const Tensor kept_logits = F32Tensor(kCuda, shape, values);
    const Tensor targets = RepeatingIds(1, c.rows, c.vocab, 5);
    const TokenWindow window{targets, 0, c.rows};
    SoftmaxCrossEntropy ce(c.vocab);
    ASSERT_OK_AND_ASSIGN(const double loss_cpu,
                         ce.ForwardWithGradient(cpu_logits, window, cpu_logits));
    ASSERT_OK_AND_ASSIGN(const double forward_loss, ce.Forward(kept_logits, window));
    ASSERT_OK_AND_ASSIGN(const double loss_f32,
                         ce.ForwardWithGradient(cuda_logits, window, cuda_logits));
    EXPECT_EQ(loss_f32, forward_loss);
    EXPECT_NEAR(loss_f32, loss_cpu, 1e-5 * std::abs(loss_cpu));
    EXPECT_TRUE(Close(cuda_logits, cpu_logits)) << "f32 gradient (padding must be 0)";

    ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty(shape, DType::kBF16, kCuda));
    Poison(bf16);
    ASSERT_OK_AND_ASSIGN(const double loss_bf16, ce.ForwardWithGradient(kept_logits, window, bf16));
    EXPECT_EQ(loss_bf16, forward_loss);
    EXPECT_TRUE(BitIdentical(kept_logits, F32Tensor(kCuda, shape, values))) << "logits changed";
    ASSERT_OK_AND_ASSIGN(Tensor rounded, Tensor::Empty(shape, DType::kBF16, kCuda));
    ASSERT_OK(Cast(cuda_logits, rounded));
    EXPECT_TRUE(BitIdentical(bf16, rounded)) << "bf16 gradient: the f32 one rounded";
  }
}

// Under bf16 products the loss reads bf16 logits (the vocabulary projection's output), computing
// in f32: the same loss bits as from an f32 copy of them, whether the rows are read two elements
// an access (an even width, aligned) or one (an odd width; a view one element into its buffer);
// the gradient in place over them the bits of the f32 copy's bf16 gradient; Backward's in-place
// gradient the f32 copy's rounded.
TEST_F(CudaLayersGpuTest, CrossEntropyOnBf16LogitsGivesTheBitsOfTheirF32Copy) {
  struct Case {
    int64_t rows, vocab, padded;
    int64_t offset;  // Of the logits in their buffer, in elements.
  };
  for (const Case& c :
       {Case{1, 5, 5, 0}, Case{37, 39, 128, 0}, Case{37, 40, 128, 1}, Case{3, 50257, 50304, 0},
        Case{2, 57400, 57408, 0}}) {  // Rows kept in shared memory, and one too wide for it.
    SCOPED_TRACE(absl::StrCat("rows ", c.rows, " vocab ", c.vocab, " padded ", c.padded, " offset ",
                              c.offset));
    const Shape shape{c.rows, c.padded};
    const std::vector<float> values = RandomValues(c.offset + c.rows * c.padded, 93, 8.0f);
    ASSERT_OK_AND_ASSIGN(Tensor buffer,
                         Tensor::Empty({c.offset + c.rows * c.padded}, DType::kBF16, kCuda));
    ASSERT_OK(Cast(F32Tensor(kCuda, {c.offset + c.rows * c.padded}, values), buffer));
    ASSERT_OK_AND_ASSIGN(const Tensor logits16, buffer.View(c.offset, shape));
    const auto f32_copy = [&]() {
      Tensor copy = Tensor::Empty(shape, DType::kF32, kCuda).value();
      EXPECT_OK(Cast(logits16, copy));
      return copy;
    };
    const Tensor logits32 = f32_copy();
    const Tensor targets = RepeatingIds(1, c.rows, c.vocab, 7);
    const TokenWindow window{targets, 0, c.rows};
    SoftmaxCrossEntropy ce(c.vocab);

    ASSERT_OK_AND_ASSIGN(const double loss32, ce.Forward(logits32, window));
    ce.Release();
    ASSERT_OK_AND_ASSIGN(const double loss16, ce.Forward(logits16, window));
    ce.Release();
    EXPECT_EQ(loss16, loss32) << "Forward";

    ASSERT_OK_AND_ASSIGN(Tensor gradient32, Tensor::Empty(shape, DType::kBF16, kCuda));
    Poison(gradient32);
    ASSERT_OK_AND_ASSIGN(const double with_gradient32,
                         ce.ForwardWithGradient(logits32, window, gradient32));
    const Tensor kept16 = f32_copy();  // The logits, before the in-place gradient.
    ASSERT_OK_AND_ASSIGN(const double with_gradient16,
                         ce.ForwardWithGradient(logits16, window, logits16));
    EXPECT_EQ(with_gradient32, loss32);
    EXPECT_EQ(with_gradient16, loss32);
    EXPECT_TRUE(BitIdentical(logits16, gradient32)) << "ForwardWithGradient in place";

    // Backward in place: from fresh bf16 logits (kept16's values) and their f32 copy.
    ASSERT_OK(Cast(kept16, logits16));
    ASSERT_OK(Cast(kept16, logits32));
    ASSERT_OK(ce.Forward(logits32, window).status());
    ASSERT_OK(ce.Backward(0.7));
    ASSERT_OK(ce.Forward(logits16, window).status());
    ASSERT_OK(ce.Backward(0.7));
    ASSERT_OK_AND_ASSIGN(Tensor rounded, Tensor::Empty(shape, DType::kBF16, kCuda));
    ASSERT_OK(Cast(logits32, rounded));
    EXPECT_TRUE(BitIdentical(logits16, rounded)) << "Backward in place";
  }
  // An f32 gradient of bf16 logits is refused.
  ASSERT_OK_AND_ASSIGN(Tensor logits16, Tensor::Empty({2, 8}, DType::kBF16, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor gradient32, Tensor::Empty({2, 8}, DType::kF32, kCuda));
  const Tensor targets = RepeatingIds(1, 2, 8, 1);
  SoftmaxCrossEntropy ce(8);
  EXPECT_TRUE(absl::IsInvalidArgument(
      ce.ForwardWithGradient(logits16, {targets, 0, 2}, gradient32).status()));
}

// `operand` is bf16 and holds `y`'s values rounded to nearest, bit for bit.
::testing::AssertionResult IsRoundedToBf16(const Tensor& operand, const Tensor& y) {
  if (operand.dtype() != DType::kBF16) return ::testing::AssertionFailure() << "not bf16";
  Tensor rounded = Tensor::Empty(y.shape(), DType::kBF16, kCuda).value();
  if (!Cast(y, rounded).ok()) return ::testing::AssertionFailure() << "cast failed";
  return BitIdentical(operand, rounded);
}

// Under bf16 products, LayerNorm writes the next product's operand in bf16 at once: Forward's
// f32 values rounded to nearest, bit for bit. A Linear takes that input as it is and gives what
// it gives for the f32 one, which it would round the same way (output, input gradient and
// weight gradient, bit for bit); without bf16 products it refuses it.
TEST_F(CudaLayersGpuTest, LayerNormWritesTheNextProductsOperandAndLinearTakesIt) {
  std::optional<testing::ScopedMatmulPrecision> bf16(MatmulPrecision::kBf16);
  const TensorPair h = RandomPair({3, 7, 64}, 120, 3.0f);
  ASSERT_OK_AND_ASSIGN(auto ln, LayerNorm::Create({.dim = 64, .device = kCuda}));
  ASSERT_OK_AND_ASSIGN(const Tensor normed, ln->Forward(h.cuda));
  ASSERT_OK_AND_ASSIGN(const Tensor normed16, ln->ForwardOperand(h.cuda));
  EXPECT_TRUE(IsRoundedToBf16(normed16, normed)) << "layer norm";

  ParameterInitializer init(5);
  ASSERT_OK_AND_ASSIGN(
      auto fc, Linear::Create({.in_features = 64, .out_features = 48, .device = kCuda}, init));
  const TensorPair dy = RandomPair({3, 7, 48}, 121);
  // Output, dx and the weight's gradient from one input.
  const auto run = [&](const Tensor& x) -> absl::StatusOr<std::vector<Tensor>> {
    RETURN_IF_ERROR(fc->ZeroGrad());
    ASSIGN_OR_RETURN(Tensor out, fc->Forward(x));
    ASSIGN_OR_RETURN(Tensor dx, fc->Backward(dy.cuda));
    ASSIGN_OR_RETURN(Tensor dw, Tensor::Empty(fc->weight().grad.shape(), DType::kF32, kCuda));
    RETURN_IF_ERROR(Copy(fc->weight().grad, dw));
    return std::vector<Tensor>{out, dx, dw};
  };
  ASSERT_OK_AND_ASSIGN(const std::vector<Tensor> from_f32, run(normed));
  ASSERT_OK_AND_ASSIGN(const std::vector<Tensor> from_bf16, run(normed16));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(from_bf16[i].dtype(), DType::kF32) << i;
    EXPECT_TRUE(BitIdentical(from_bf16[i], from_f32[i])) << "output, dx, dw: " << i;
  }
  bf16.reset();  // f32 products: a bf16 input is not the product's operand.
  const absl::Status refused = fc->Forward(normed16).status();
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
}

// A Linear with GELU (the MLP's c_fc) in f32: the product, then the GELU kernels, with the
// backward pass's gradient and bias sums from one kernel. Widths on and off multiples of 8
// and 32, with and without a bias.
TEST_F(CudaLayersGpuTest, LinearWithGeluMatchesCpu) {
  struct Case {
    Shape x;
    int64_t out;
    bool bias;
  };
  for (const Case& c :
       {Case{{3, 5, 37}, 45, true}, Case{{2, 129, 64}, 256, true}, Case{{4, 9}, 17, false}}) {
    const int64_t in = c.x.dim(c.x.rank() - 1);
    const LinearOptions o{.in_features = in,
                          .out_features = c.out,
                          .bias = c.bias,
                          .activation = LinearActivation::kGelu};
    LinearOptions on_cuda = o;
    on_cuda.device = kCuda;
    ParameterInitializer i1(1), i2(1);
    ASSERT_OK_AND_ASSIGN(auto cpu, Linear::Create(o, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda, Linear::Create(on_cuda, i2));
    CompareLayer<Linear>(
        *cpu, *cuda, c.x, 15, [](Linear& l, const Tensor& x) { return l.Forward(x); },
        [](Linear& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("Linear+GELU ", c.x.ToString(), " -> ", c.out));
  }
}

// Under bf16 products a Linear with GELU is one cuBLASLt product with the GELU epilogue (where
// the output width is a multiple of 8: 256 here; 45 takes the product and the GELU kernel),
// writing the bf16 operand of the next product and keeping the GELU's input in bf16. Against
// the cpu's emulation (f32 GELU input, f32 bias, usine's GELU): the bias and the GELU's input
// are rounded to bf16 once more (2^-9 relative each) and cuBLASLt's tanh is its own, so the
// output (a bf16 rounding of the same value) and the gradients agree to 1e-2 of their norms, as
// CudaGptGpuTest's bf16 gradients do. Two CUDA layers give the same bits.
TEST_F(CudaLayersGpuTest, LinearWithGeluUnderBf16MatchesTheCpusEmulation) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  for (const int64_t out : {int64_t{256}, int64_t{45}}) {
    SCOPED_TRACE(absl::StrCat("out ", out));
    const LinearOptions o{
        .in_features = 64, .out_features = out, .activation = LinearActivation::kGelu};
    LinearOptions on_cuda = o;
    on_cuda.device = kCuda;
    ParameterInitializer i1(2), i2(2), i3(2);
    ASSERT_OK_AND_ASSIGN(auto cpu, Linear::Create(o, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda, Linear::Create(on_cuda, i2));
    ASSERT_OK_AND_ASSIGN(auto again, Linear::Create(on_cuda, i3));
    testing::CompareLayerUnderBf16(*cpu, *cuda, *again, {2, 33, 64}, 16, 1e-2, DType::kBF16);
  }
}

// Under bf16 products the MLP's backward pass hands GELU's gradient from c_proj to c_fc
// (linear_sublayer.h): where 4C is a multiple of 8 (256 here) c_proj's input-gradient product
// applies GELU's derivative as cuBLASLt's DGELU epilogue, reading the bf16 GELU input that
// c_fc's GELU epilogue kept, and c_fc sums its bias gradient from that bf16 product; at 4C = 12
// the products are followed by the GELU kernels. Against the cpu's emulation (f32 GELU input
// and gradient) within 1e-2 of the norms, as the GELU Linear above; two CUDA MLPs give the same
// bits.
TEST_F(CudaLayersGpuTest, MlpUnderBf16MatchesTheCpusEmulation) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  for (const int64_t embd : {int64_t{64}, int64_t{3}}) {
    SCOPED_TRACE(absl::StrCat("n_embd ", embd));
    ParameterInitializer i1(4), i2(4), i3(4);
    ASSERT_OK_AND_ASSIGN(auto cpu, Mlp::Create({.n_embd = embd}, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda, Mlp::Create({.n_embd = embd, .device = kCuda}, i2));
    ASSERT_OK_AND_ASSIGN(auto again, Mlp::Create({.n_embd = embd, .device = kCuda}, i3));
    testing::CompareLayerUnderBf16(*cpu, *cuda, *again, {2, 33, embd}, 17, 1e-2, DType::kF32);
  }
}

#if USINE_CUDA_EMULATED
// The emulator counts the DGELU products: one per MLP backward pass where 4C is a multiple of 8,
// none where it is not (the kernel path), so the test above compares both paths.
TEST_F(CudaLayersGpuTest, MlpBackwardUnderBf16UsesTheDgeluProductWhereItFits) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  for (const auto& [embd, products] : {std::pair<int64_t, int64_t>{64, 1}, {3, 0}}) {
    SCOPED_TRACE(absl::StrCat("n_embd ", embd));
    ParameterInitializer init(4);
    ASSERT_OK_AND_ASSIGN(auto mlp, Mlp::Create({.n_embd = embd, .device = kCuda}, init));
    const TensorPair x = RandomPair({2, 5, embd}, 3, 2.0f);
    const TensorPair dy = RandomPair({2, 5, embd}, 4);
    ASSERT_OK(mlp->ZeroGrad());
    const testing::cuda_emulator::Statistics stats = testing::cuda_emulator::StatisticsOf([&] {
      ASSERT_OK(mlp->Forward(x.cuda).status());
      ASSERT_OK(mlp->Backward(dy.cuda).status());
    });
    EXPECT_EQ(stats.dgelu_products, products);
  }
}
#endif

// Under f32 and TF32 products, a Linear of options `with` (on CUDA) computes what one of
// `plain` does (`with` without its bf16 options), bit for bit: f32 output and input gradient.
void ExpectAPlainLinearOutsideBf16(const LinearOptions& with, const LinearOptions& plain,
                                   uint64_t seed) {
  for (const MatmulPrecision precision : {MatmulPrecision::kF32, MatmulPrecision::kTf32}) {
    SCOPED_TRACE(MatmulPrecisionName(precision));
    testing::ScopedMatmulPrecision scoped(precision);
    ParameterInitializer i1(seed), i2(seed);
    ASSERT_OK_AND_ASSIGN(auto a, Linear::Create(with, i1));
    ASSERT_OK_AND_ASSIGN(auto b, Linear::Create(plain, i2));
    const TensorPair x = RandomPair({3, 21, with.in_features}, seed + 1, 2.0f);
    const TensorPair dy = RandomPair({3, 21, with.out_features}, seed + 2);
    ASSERT_OK_AND_ASSIGN(const Tensor y, a->Forward(x.cuda));
    ASSERT_OK_AND_ASSIGN(const Tensor y_plain, b->Forward(x.cuda));
    EXPECT_EQ(y.dtype(), DType::kF32);
    EXPECT_TRUE(BitIdentical(y, y_plain)) << "output";
    ASSERT_OK_AND_ASSIGN(const Tensor dx, a->Backward(dy.cuda));
    ASSERT_OK_AND_ASSIGN(const Tensor dx_plain, b->Backward(dy.cuda));
    EXPECT_EQ(dx.dtype(), DType::kF32);
    EXPECT_TRUE(BitIdentical(dx, dx_plain)) << "input gradient";
  }
}

// A Linear with output_operand (c_attn before the bf16 flash kernels) writes y in bf16 under
// bf16 products, the bias rounded to bf16 (the cpu's emulation: within 1e-2); under f32 and
// TF32 products it is a plain Linear, bit for bit.
TEST_F(CudaLayersGpuTest, LinearWithOperandOutputWritesBf16UnderBf16Only) {
  const LinearOptions o{.in_features = 64, .out_features = 96, .output_operand = true};
  LinearOptions on_cuda = o;
  on_cuda.device = kCuda;
  {
    testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
    ParameterInitializer i1(6), i2(6), i3(6);
    ASSERT_OK_AND_ASSIGN(auto cpu, Linear::Create(o, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda, Linear::Create(on_cuda, i2));
    ASSERT_OK_AND_ASSIGN(auto again, Linear::Create(on_cuda, i3));
    testing::CompareLayerUnderBf16(*cpu, *cuda, *again, {3, 21, 64}, 26, 1e-2, DType::kBF16);
  }
  LinearOptions plain = on_cuda;
  plain.output_operand = false;
  ExpectAPlainLinearOutsideBf16(on_cuda, plain, 27);
}

// A Linear's output gradient under bf16 products: its bf16 operand and its column sums (the
// bias gradient) from one pass, the same bits as the cast and the sums apart, over odd shapes.
TEST_F(CudaLayersGpuTest, RoundingWithColumnSumsIsTheCastAndTheSumsApart) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {37, 45}, {300, 97}}) {
    SCOPED_TRACE(absl::StrCat(rows, " x ", cols));
    const TensorPair x = RandomPair({rows, cols}, 130, 4.0f);
    const std::vector<float> start = RandomValues(cols, 131);
    const Tensor fused_sums = F32Tensor(kCuda, {cols}, start);
    const Tensor sums = F32Tensor(kCuda, {cols}, start);
    ASSERT_OK_AND_ASSIGN(const Tensor rounded,
                         ni::CudaRoundAndAccumulateColumnSums(x.cuda, cols, fused_sums));
    ASSERT_OK(ni::CudaAccumulateColumnSums(x.cuda, cols, sums));
    EXPECT_TRUE(IsRoundedToBf16(rounded, x.cuda)) << "operand";
    EXPECT_TRUE(BitIdentical(fused_sums, sums)) << "column sums";
  }
}

// Kernel level: outputs poisoned with NaN before the kernels run.

TEST_F(CudaLayersGpuTest, LayerNormKernelsWriteEveryOutput) {
  const int64_t rows = 19, cols = 45;
  const TensorPair x = RandomPair({rows, cols}, 100, 3.0f);
  const TensorPair w = RandomPair({cols}, 101), b = RandomPair({cols}, 102);
  const TensorPair dy = RandomPair({rows, cols}, 103);
  std::vector<float> y(rows * cols), mean(rows), rstd(rows), dx(rows * cols), dw(cols, 0.0f),
      db(cols, 0.0f);
  const float* xp = static_cast<const float*>(x.cpu.raw_data());
  const float* wp = static_cast<const float*>(w.cpu.raw_data());
  const float* bp = static_cast<const float*>(b.cpu.raw_data());
  ni::LayerNormForward(xp, wp, bp, rows, cols, 1e-5, y.data(), mean.data(), rstd.data());
  ni::LayerNormBackward(static_cast<const float*>(dy.cpu.raw_data()), xp, wp, mean.data(),
                        rstd.data(), rows, cols, dx.data(), dw.data(), db.data());
  ASSERT_OK_AND_ASSIGN(Tensor y_cuda, Tensor::Empty({rows, cols}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor mean_cuda, Tensor::Empty({rows}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor rstd_cuda, Tensor::Empty({rows}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor dx_cuda, Tensor::Empty({rows, cols}, DType::kF32, kCuda));
  for (const Tensor& t : {y_cuda, mean_cuda, rstd_cuda, dx_cuda}) Poison(t);
  const Tensor dw_cuda = F32Tensor(kCuda, {cols}, std::vector<float>(cols, 0.0f));
  const Tensor db_cuda = F32Tensor(kCuda, {cols}, std::vector<float>(cols, 0.0f));
  ASSERT_OK(
      ni::CudaLayerNormForward(x.cuda, w.cuda, b.cuda, cols, 1e-5, y_cuda, mean_cuda, rstd_cuda));
  ASSERT_OK(ni::CudaLayerNormBackward(dy.cuda, x.cuda, w.cuda, mean_cuda, rstd_cuda, cols,
                                      /*skip=*/Tensor(), dx_cuda, dw_cuda, db_cuda));
  EXPECT_TRUE(Close(y_cuda, F32Tensor(Device::Cpu(), {rows, cols}, y))) << "y";
  EXPECT_TRUE(Close(mean_cuda, F32Tensor(Device::Cpu(), {rows}, mean))) << "mean";
  EXPECT_TRUE(Close(rstd_cuda, F32Tensor(Device::Cpu(), {rows}, rstd))) << "rstd";
  EXPECT_TRUE(Close(dx_cuda, F32Tensor(Device::Cpu(), {rows, cols}, dx))) << "dx";
  EXPECT_TRUE(Close(dw_cuda, F32Tensor(Device::Cpu(), {cols}, dw))) << "dweight";
  EXPECT_TRUE(Close(db_cuda, F32Tensor(Device::Cpu(), {cols}, db))) << "dbias";
}

TEST_F(CudaLayersGpuTest, GeluKernelsWriteEveryOutput) {
  const int64_t n = 70001;
  const TensorPair x = RandomPair({n}, 110, 5.0f), dy = RandomPair({n}, 111);
  std::vector<float> y(n), dx(n);
  ni::GeluForward(static_cast<const float*>(x.cpu.raw_data()), n, y.data());
  ni::GeluBackward(static_cast<const float*>(x.cpu.raw_data()),
                   static_cast<const float*>(dy.cpu.raw_data()), n, dx.data());
  ASSERT_OK_AND_ASSIGN(Tensor y_cuda, Tensor::Empty({n}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor dx_cuda, Tensor::Empty({n}, DType::kF32, kCuda));
  Poison(y_cuda);
  Poison(dx_cuda);
  ASSERT_OK(ni::CudaGeluForward(x.cuda, y_cuda));
  ASSERT_OK(ni::CudaGeluBackward(x.cuda, dy.cuda, dx_cuda));
  EXPECT_TRUE(Close(y_cuda, F32Tensor(Device::Cpu(), {n}, y))) << "y";
  EXPECT_TRUE(Close(dx_cuda, F32Tensor(Device::Cpu(), {n}, dx))) << "dx";
}

// GELU's backward pass with the column sums (a GELU layer's gradient and its linear layer's
// bias gradient): the same bits as the GELU kernel and the column sums apart, for an f32 or a
// bf16 input (as the GELU epilogue saves it) and an f32 or bf16 output (the rounding of the f32
// one), over odd shapes.
TEST_F(CudaLayersGpuTest, GeluBackwardWithColumnSumsIsTheKernelsApart) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {37, 45}, {300, 97}}) {
    for (const DType in : {DType::kF32, DType::kBF16}) {
      for (const DType out : {DType::kF32, DType::kBF16}) {
        SCOPED_TRACE(
            absl::StrCat(rows, " x ", cols, ", in ", DTypeName(in), ", out ", DTypeName(out)));
        const TensorPair x32 = RandomPair({rows, cols}, 150, 4.0f);
        const TensorPair dy = RandomPair({rows, cols}, 151);
        Tensor x = x32.cuda;
        if (in == DType::kBF16) {
          ASSERT_OK_AND_ASSIGN(x, Tensor::Empty({rows, cols}, in, kCuda));
          ASSERT_OK(Cast(x32.cuda, x));
        }
        const std::vector<float> start = RandomValues(cols, 152);
        const Tensor fused_sums = F32Tensor(kCuda, {cols}, start);
        const Tensor sums = F32Tensor(kCuda, {cols}, start);
        ASSERT_OK_AND_ASSIGN(Tensor fused, Tensor::Empty({rows, cols}, out, kCuda));
        ASSERT_OK_AND_ASSIGN(Tensor apart, Tensor::Empty({rows, cols}, DType::kF32, kCuda));
        Poison(apart);
        ASSERT_OK(ni::CudaGeluBackwardAndColumnSums(x, dy.cuda, cols, fused, fused_sums));
        ASSERT_OK(ni::CudaGeluBackward(x, dy.cuda, apart));
        ASSERT_OK(ni::CudaAccumulateColumnSums(apart, cols, sums));
        EXPECT_TRUE(BitIdentical(fused_sums, sums)) << "column sums";
        if (out == DType::kBF16) {
          EXPECT_TRUE(IsRoundedToBf16(fused, apart)) << "gradient";
        } else {
          EXPECT_TRUE(BitIdentical(fused, apart)) << "gradient";
        }
      }
    }
  }
}

// A bf16 dy (as an MLP's c_proj writes its input gradient under bf16 products, for the GELU
// kernel where cuBLASLt has no DGELU product) gives the GELU backward kernels the bits of an
// f32 dy holding the same values, with and without the column sums, for both dtypes of the
// GELU's input; a bf16 dy with an f32 dx is refused.
TEST_F(CudaLayersGpuTest, GeluBackwardTakesABf16GradientAsItsF32Copy) {
  const int64_t rows = 37, cols = 45;
  for (const DType in : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(in));
    const TensorPair x32 = RandomPair({rows, cols}, 160, 4.0f);
    Tensor x = x32.cuda;
    if (in == DType::kBF16) {
      ASSERT_OK_AND_ASSIGN(x, Tensor::Empty({rows, cols}, in, kCuda));
      ASSERT_OK(Cast(x32.cuda, x));
    }
    ASSERT_OK_AND_ASSIGN(Tensor dy16, Tensor::Empty({rows, cols}, DType::kBF16, kCuda));
    ASSERT_OK(Cast(RandomPair({rows, cols}, 161).cuda, dy16));
    ASSERT_OK_AND_ASSIGN(Tensor dy32, Tensor::Empty({rows, cols}, DType::kF32, kCuda));
    ASSERT_OK(Cast(dy16, dy32));
    const std::vector<float> start = RandomValues(cols, 162);
    const Tensor sums16 = F32Tensor(kCuda, {cols}, start), sums32 = F32Tensor(kCuda, {cols}, start);
    ASSERT_OK_AND_ASSIGN(Tensor dx16, Tensor::Empty({rows, cols}, DType::kBF16, kCuda));
    ASSERT_OK_AND_ASSIGN(Tensor dx32, Tensor::Empty({rows, cols}, DType::kBF16, kCuda));
    ASSERT_OK(ni::CudaGeluBackwardAndColumnSums(x, dy16, cols, dx16, sums16));
    ASSERT_OK(ni::CudaGeluBackwardAndColumnSums(x, dy32, cols, dx32, sums32));
    EXPECT_TRUE(BitIdentical(dx16, dx32)) << "gradient, with the sums";
    EXPECT_TRUE(BitIdentical(sums16, sums32)) << "column sums";
    Poison(dx16);
    ASSERT_OK(ni::CudaGeluBackward(x, dy16, dx16));
    ASSERT_OK(ni::CudaGeluBackward(x, dy32, dx32));
    EXPECT_TRUE(BitIdentical(dx16, dx32)) << "gradient";
    ASSERT_OK_AND_ASSIGN(Tensor f32_dx, Tensor::Empty({rows, cols}, DType::kF32, kCuda));
    EXPECT_TRUE(absl::IsInvalidArgument(ni::CudaGeluBackward(x, dy16, f32_dx)));
  }
}

// A Linear with input_gradient_operand (an MLP's c_proj) writes dx in bf16 under bf16 products
// (the cpu's emulation, which rounds it: within 1e-2); under f32 and TF32 products it is a plain
// Linear, bit for bit.
TEST_F(CudaLayersGpuTest, LinearWithOperandInputGradientWritesBf16UnderBf16Only) {
  const LinearOptions o{.in_features = 96, .out_features = 64, .input_gradient_operand = true};
  LinearOptions on_cuda = o;
  on_cuda.device = kCuda;
  {
    testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
    ParameterInitializer i1(8), i2(8), i3(8), i4(8);
    ASSERT_OK_AND_ASSIGN(auto cpu, Linear::Create(o, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda, Linear::Create(on_cuda, i2));
    ASSERT_OK_AND_ASSIGN(auto again, Linear::Create(on_cuda, i3));
    testing::CompareLayerUnderBf16(*cpu, *cuda, *again, {3, 21, 96}, 28, 1e-2, DType::kF32);
    ASSERT_OK_AND_ASSIGN(auto single, Linear::Create(on_cuda, i4));
    ASSERT_OK(single->Forward(RandomPair({2, 96}, 29).cuda).status());
    ASSERT_OK_AND_ASSIGN(const Tensor dx, single->Backward(RandomPair({2, 64}, 30).cuda));
    EXPECT_EQ(dx.dtype(), DType::kBF16);
  }
  LinearOptions plain = on_cuda;
  plain.input_gradient_operand = false;
  ExpectAPlainLinearOutsideBf16(on_cuda, plain, 31);
}

// A plain Linear takes a bf16 dy (the bf16 flash attention writes c_attn's so) as the f32 dy
// holding the same values: under bf16 products the same dx and weight gradient (one operand,
// bf16 either way) and the same bias gradient (the column sums of the same values), bit for bit.
TEST_F(CudaLayersGpuTest, LinearTakesABf16GradientAsItsF32Copy) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  const LinearOptions o{.in_features = 48, .out_features = 80, .device = kCuda};
  ParameterInitializer i1(9), i2(9);
  ASSERT_OK_AND_ASSIGN(auto from16, Linear::Create(o, i1));
  ASSERT_OK_AND_ASSIGN(auto from32, Linear::Create(o, i2));
  const Tensor x = RandomPair({3, 7, 48}, 170).cuda;
  ASSERT_OK(from16->Forward(x).status());
  ASSERT_OK(from32->Forward(x).status());
  ASSERT_OK_AND_ASSIGN(Tensor dy16, Tensor::Empty({3, 7, 80}, DType::kBF16, kCuda));
  ASSERT_OK(Cast(RandomPair({3, 7, 80}, 171).cuda, dy16));
  ASSERT_OK_AND_ASSIGN(Tensor dy32, Tensor::Empty({3, 7, 80}, DType::kF32, kCuda));
  ASSERT_OK(Cast(dy16, dy32));
  ASSERT_OK_AND_ASSIGN(const Tensor dx16, from16->Backward(dy16));
  ASSERT_OK_AND_ASSIGN(const Tensor dx32, from32->Backward(dy32));
  EXPECT_TRUE(BitIdentical(dx16, dx32)) << "input gradient";
  const std::vector<NamedParameter> a = from16->Parameters(), b = from32->Parameters();
  ASSERT_EQ(a.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(BitIdentical(a[i].parameter->grad, b[i].parameter->grad)) << a[i].name;
  }
}

TEST_F(CudaLayersGpuTest, AttentionKernelsWriteEveryOutput) {
  const ni::AttentionDims d{.batch = 2, .seq = 37, .heads = 3, .head_dim = 5};
  const int64_t c = d.heads * d.head_dim;
  const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 120, 1.5f);
  const TensorPair dout = RandomPair({d.batch, d.seq, c}, 121);
  std::vector<float> out(d.batch * d.seq * c), probs(d.batch * d.heads * d.seq * d.seq),
      dqkv(d.batch * d.seq * 3 * c);
  ni::CausalAttentionForward(static_cast<const float*>(qkv.cpu.raw_data()), d, out.data(),
                             probs.data());
  ni::CausalAttentionBackward(static_cast<const float*>(dout.cpu.raw_data()),
                              static_cast<const float*>(qkv.cpu.raw_data()), probs.data(), d,
                              dqkv.data());
  ASSERT_OK_AND_ASSIGN(Tensor out_cuda, Tensor::Empty({d.batch, d.seq, c}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor heads,
                       Tensor::Empty({3, d.batch, d.heads, d.seq, d.head_dim}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor probs_cuda,
                       Tensor::Empty({d.batch, d.heads, d.seq, d.seq}, DType::kF32, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor dqkv_cuda,
                       Tensor::Empty({d.batch, d.seq, 3 * c}, DType::kF32, kCuda));
  for (const Tensor& t : {out_cuda, heads, probs_cuda, dqkv_cuda}) Poison(t);
  ASSERT_OK(ni::CudaCausalAttentionForward(qkv.cuda, d, out_cuda, heads, probs_cuda));
  ASSERT_OK(ni::CudaCausalAttentionBackward(dout.cuda, heads, probs_cuda, d, dqkv_cuda));
  EXPECT_TRUE(Close(out_cuda, F32Tensor(Device::Cpu(), {d.batch, d.seq, c}, out))) << "out";
  // Above the diagonal both hold exact zeros.
  EXPECT_TRUE(Close(probs_cuda, F32Tensor(Device::Cpu(), {d.batch, d.heads, d.seq, d.seq}, probs)))
      << "probs";
  EXPECT_TRUE(Close(dqkv_cuda, F32Tensor(Device::Cpu(), {d.batch, d.seq, 3 * c}, dqkv))) << "dqkv";
}

TEST_F(CudaLayersGpuTest, EmbeddingForwardWritesEveryOutput) {
  const std::vector<int32_t> ids = {4, 0, 4, 2, 1, 4, 3};
  const TensorPair table = RandomPair({5, 37}, 130);
  ASSERT_OK_AND_ASSIGN(Tensor device_ids, ni::CudaUploadIds(ids, kCuda));
  ASSERT_OK_AND_ASSIGN(Tensor out, Tensor::Empty({7, 37}, DType::kF32, kCuda));
  Poison(out);
  ASSERT_OK(ni::CudaEmbeddingForward(device_ids, table.cuda, out));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, testing::ReadTensor<float>(out));
  const float* t = static_cast<const float*>(table.cpu.raw_data());
  for (int64_t i = 0; i < 7; ++i) {
    for (int64_t j = 0; j < 37; ++j) {
      ASSERT_EQ(testing::Bits(got[i * 37 + j]), testing::Bits(t[ids[i] * 37 + j]))
          << "row " << i << " column " << j;
    }
  }
}

// Column sums (bias and LayerNorm gradients) in a fixed order: the same bits every time, and
// the cpu's sum to f32 rounding.
TEST_F(CudaLayersGpuTest, ColumnSumsAreDeterministic) {
  const int64_t rows = 1000, cols = 77;
  const TensorPair x = RandomPair({rows, cols}, 140);
  const std::vector<float> start = RandomValues(cols, 141);
  std::vector<float> expected = start;
  const float* xp = static_cast<const float*>(x.cpu.raw_data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) expected[c] += xp[r * cols + c];
  }
  const Tensor a = F32Tensor(kCuda, {cols}, start), b = F32Tensor(kCuda, {cols}, start);
  ASSERT_OK(ni::CudaAccumulateColumnSums(x.cuda, cols, a));
  ASSERT_OK(ni::CudaAccumulateColumnSums(x.cuda, cols, b));
  EXPECT_TRUE(BitIdentical(a, b));
  EXPECT_TRUE(Close(a, F32Tensor(Device::Cpu(), {cols}, expected)));
}

TEST_F(CudaLayersGpuTest, MismatchedDevicesAreErrors) {
  ParameterInitializer init(1);
  ASSERT_OK_AND_ASSIGN(
      auto fc, Linear::Create({.in_features = 4, .out_features = 2, .device = kCuda}, init));
  ASSERT_OK_AND_ASSIGN(Tensor x_cpu, Tensor::Empty({2, 4}, DType::kF32));
  const absl::Status s = fc->Forward(x_cpu).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("Linear input"), absl::string_view::npos) << s;
}

// The cached kernel indexes its arrays by the dims alone: arrays of another dtype, shape or
// device, and impossible dims, are refused before it launches.
TEST_F(CudaLayersGpuTest, CachedAttentionRefusesArraysOtherThanItsDims) {
  const ni::CachedAttentionDims d{
      .batch = 2, .fresh = 3, .past = 1, .capacity = 8, .heads = 2, .head_dim = 16};
  auto empty = [](Shape shape, DType dtype, Device device) {
    return Tensor::Empty(std::move(shape), dtype, device).value();
  };
  const Tensor qkv = empty({2, 3, 96}, DType::kF32, kCuda);
  const Tensor keys = empty({2, 8, 32}, DType::kF32, kCuda);
  const Tensor values = empty({2, 8, 32}, DType::kF32, kCuda);
  const Tensor out = empty({2, 3, 32}, DType::kF32, kCuda);
  ASSERT_OK(ni::CudaCachedAttentionForward(qkv, d, keys, values, out));

  // Refused, for the reason `why` names.
  auto expect_refused = [&](const absl::Status& s, absl::string_view why) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find(absl::StrCat("CudaCachedAttentionForward: ", why)),
              absl::string_view::npos)
        << s;
  };
  const std::string f32_qkv = "expected an f32 or bf16 qkv [2, 3, 96] on a CUDA device, got";
  expect_refused(
      ni::CudaCachedAttentionForward(empty({2, 3, 95}, DType::kF32, kCuda), d, keys, values, out),
      f32_qkv);
  expect_refused(ni::CudaCachedAttentionForward(empty({2, 3, 96}, DType::kF32, Device::Cpu()), d,
                                                keys, values, out),
                 f32_qkv);
  expect_refused(
      ni::CudaCachedAttentionForward(empty({2, 3, 96}, DType::kI32, kCuda), d, keys, values, out),
      f32_qkv);
  const std::string cache = "expected an f32 array [2, 8, 32] on cuda:0, got";
  expect_refused(
      ni::CudaCachedAttentionForward(qkv, d, empty({2, 7, 32}, DType::kF32, kCuda), values, out),
      cache);
  expect_refused(
      ni::CudaCachedAttentionForward(qkv, d, keys, empty({2, 8, 32}, DType::kBF16, kCuda), out),
      cache);
  expect_refused(ni::CudaCachedAttentionForward(qkv, d, keys, values,
                                                empty({2, 3, 32}, DType::kF32, Device::Cpu())),
                 "expected an f32 array [2, 3, 32] on cuda:0, got");
  ni::CachedAttentionDims overflowing = d;
  overflowing.past = 6;  // 6 + 3 rows past a capacity of 8.
  expect_refused(ni::CudaCachedAttentionForward(qkv, overflowing, keys, values, out),
                 "dims batch 2, fresh 3, past 6, capacity 8");
  ni::CachedAttentionDims wide = d;
  wide.heads = 1;
  wide.head_dim = 2 * ni::kCachedAttentionMaxHeadDim;
  expect_refused(ni::CudaCachedAttentionForward(qkv, wide, keys, values, out),
                 absl::StrCat("head size ", wide.head_dim, " (at most"));
}

}  // namespace
}  // namespace usine
