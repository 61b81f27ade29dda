// The flash attention kernels (AttentionKernel::kFlash, cuda_flash_attention.h) against the
// cpu attention (cpu_attention.h, f32) and the unfused CUDA path, in f32 on random inputs:
// outputs, each row's log-sum-exp (against a double-precision sum) and dq|dk|dv, within
// testing::kCudaRelTolerance (cuda_compare.h; both sides round differently, neither exactly),
// over T = 1, T not a multiple of the 64-row tile, T = 1024 at D = 64, D = 128, D that pads to
// the kernels' 32, 64 or 128, B > 1 and H > 1. The outputs are poisoned with NaN first, so an
// element a kernel misses fails. Two runs give the same bits (kernels and whole models, with
// and without recomputation); the layer matches the cpu's, and a whole tiny Gpt step with
// kFlash matches kUnfused. The bf16 tensor-core kernels, which run under MatmulPrecision::kBf16,
// are held to the cpu's f32 within kBf16FlashTolerance (derived there from bf16's rounding) over
// the same kinds of shapes, give the same bits twice, take bf16 arrays with the bits of their f32
// copies, and leave head sizes that are not multiples of 16 to the f32 kernels; the layer under
// bf16 products (c_attn writing q|k|v in bf16) matches the cpu's emulation. Label `gpu`: skipped
// without a CUDA device, but for the option's checks, which need none.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "tests/runtime/nn/cuda_compare.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

namespace ni = nn_internal;
using testing::BitIdentical;
using testing::Close;
using testing::F32Tensor;
using testing::kCuda;
using testing::MakeTensor;
using testing::Poison;
using testing::RandomizeAlike;
using testing::RandomPair;
using testing::TensorPair;

class CudaFlashAttentionGpuTest : public testing::CudaDeviceTest {};

std::string Describe(const ni::AttentionDims& d) {
  return absl::StrCat("B ", d.batch, " T ", d.seq, " H ", d.heads, " D ", d.head_dim);
}

// log sum_{s <= t} exp(q_t . k_s / sqrt(D)) for every (b, h, t), in double, from qkv [B, T, 3C]
// on the cpu.
std::vector<float> ReferenceLse(const Tensor& qkv, const ni::AttentionDims& d) {
  const float* x = static_cast<const float*>(qkv.raw_data());
  const int64_t c = d.heads * d.head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d.head_dim));
  std::vector<float> lse(d.batch * d.heads * d.seq);
  std::vector<double> scores(d.seq);
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      for (int64_t t = 0; t < d.seq; ++t) {
        const float* q = x + (b * d.seq + t) * 3 * c + h * d.head_dim;
        double max = -INFINITY;
        for (int64_t s = 0; s <= t; ++s) {
          const float* k = x + (b * d.seq + s) * 3 * c + c + h * d.head_dim;
          double dot = 0;
          for (int64_t i = 0; i < d.head_dim; ++i) dot += static_cast<double>(q[i]) * k[i];
          scores[s] = dot * scale;
          max = std::max(max, scores[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; ++s) sum += std::exp(scores[s] - max);
        lse[(b * d.heads + h) * d.seq + t] = static_cast<float>(max + std::log(sum));
      }
    }
  }
  return lse;
}

// The flash kernels' results on kCuda, written into NaN-poisoned tensors.
struct FlashResult {
  Tensor out, lse, dqkv;
};

// out and dqkv in qkv's dtype (dout's too), lse in f32.
FlashResult RunFlash(const Tensor& qkv, const Tensor& dout, const ni::AttentionDims& d) {
  const int64_t c = d.heads * d.head_dim;
  FlashResult r{Tensor::Empty({d.batch, d.seq, c}, qkv.dtype(), kCuda).value(),
                Tensor::Empty({d.batch, d.heads, d.seq}, DType::kF32, kCuda).value(),
                Tensor::Empty({d.batch, d.seq, 3 * c}, qkv.dtype(), kCuda).value()};
  for (const Tensor& t : {r.out, r.lse, r.dqkv}) Poison(t);
  EXPECT_OK(ni::CudaFlashAttentionForward(qkv, d, r.out, r.lse));
  EXPECT_OK(ni::CudaFlashAttentionBackward(dout, qkv, r.out, r.lse, d, r.dqkv));
  return r;
}

// The cpu attention in f32 (whatever the process's matmul precision): out and dqkv.
struct CpuAttention {
  Tensor out, dqkv;
};

CpuAttention RunCpu(const Tensor& qkv, const Tensor& dout, const ni::AttentionDims& d) {
  testing::ScopedMatmulPrecision f32(MatmulPrecision::kF32);
  const int64_t c = d.heads * d.head_dim;
  std::vector<float> out(d.batch * d.seq * c), probs(d.batch * d.heads * d.seq * d.seq),
      dqkv(d.batch * d.seq * 3 * c);
  ni::CausalAttentionForward(static_cast<const float*>(qkv.raw_data()), d, out.data(),
                             probs.data());
  ni::CausalAttentionBackward(static_cast<const float*>(dout.raw_data()),
                              static_cast<const float*>(qkv.raw_data()), probs.data(), d,
                              dqkv.data());
  return {F32Tensor(Device::Cpu(), {d.batch, d.seq, c}, out),
          F32Tensor(Device::Cpu(), {d.batch, d.seq, 3 * c}, dqkv)};
}

TEST_F(CudaFlashAttentionGpuTest, MatchesCpuAndUnfusedCuda) {
  // T = 1; D not a multiple of 4 (padded to 32); T = 65 (one row past a tile) and 130; D = 48
  // (padded to 64); T = 1024 at GPT-2's D = 64; D = 128 and D = 100 (padded to 128).
  for (const ni::AttentionDims& d :
       {ni::AttentionDims{1, 1, 1, 64}, ni::AttentionDims{2, 1, 3, 8},
        ni::AttentionDims{2, 37, 3, 5}, ni::AttentionDims{1, 65, 2, 64},
        ni::AttentionDims{3, 17, 2, 48}, ni::AttentionDims{2, 130, 4, 32},
        ni::AttentionDims{1, 1024, 2, 64}, ni::AttentionDims{2, 200, 2, 128},
        ni::AttentionDims{1, 64, 1, 100}}) {
    SCOPED_TRACE(Describe(d));
    const int64_t c = d.heads * d.head_dim;
    const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 10 + d.seq, 1.5f);
    const TensorPair dout = RandomPair({d.batch, d.seq, c}, 11 + d.seq);
    const CpuAttention cpu = RunCpu(qkv.cpu, dout.cpu, d);
    // The unfused CUDA path.
    ASSERT_OK_AND_ASSIGN(Tensor out_unfused,
                         Tensor::Empty({d.batch, d.seq, c}, DType::kF32, kCuda));
    ASSERT_OK_AND_ASSIGN(
        Tensor heads, Tensor::Empty({3, d.batch, d.heads, d.seq, d.head_dim}, DType::kF32, kCuda));
    ASSERT_OK_AND_ASSIGN(Tensor probs_unfused,
                         Tensor::Empty({d.batch, d.heads, d.seq, d.seq}, DType::kF32, kCuda));
    ASSERT_OK_AND_ASSIGN(Tensor dqkv_unfused,
                         Tensor::Empty({d.batch, d.seq, 3 * c}, DType::kF32, kCuda));
    ASSERT_OK(ni::CudaCausalAttentionForward(qkv.cuda, d, out_unfused, heads, probs_unfused));
    ASSERT_OK(ni::CudaCausalAttentionBackward(dout.cuda, heads, probs_unfused, d, dqkv_unfused));

    const FlashResult flash = RunFlash(qkv.cuda, dout.cuda, d);
    EXPECT_TRUE(Close(flash.out, cpu.out)) << "out against the cpu";
    EXPECT_TRUE(Close(flash.dqkv, cpu.dqkv)) << "dqkv against the cpu";
    EXPECT_TRUE(Close(flash.out, out_unfused)) << "out against unfused CUDA";
    EXPECT_TRUE(Close(flash.dqkv, dqkv_unfused)) << "dqkv against unfused CUDA";
    EXPECT_TRUE(Close(
        flash.lse, F32Tensor(Device::Cpu(), {d.batch, d.heads, d.seq}, ReferenceLse(qkv.cpu, d))))
        << "log-sum-exp against double";
  }
}

TEST_F(CudaFlashAttentionGpuTest, TwoRunsGiveTheSameBits) {
  const ni::AttentionDims d{.batch = 2, .seq = 300, .heads = 3, .head_dim = 64};
  const int64_t c = d.heads * d.head_dim;
  const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 20, 1.5f);
  const TensorPair dout = RandomPair({d.batch, d.seq, c}, 21);
  const FlashResult a = RunFlash(qkv.cuda, dout.cuda, d);
  const FlashResult b = RunFlash(qkv.cuda, dout.cuda, d);
  EXPECT_TRUE(BitIdentical(a.out, b.out)) << "out";
  EXPECT_TRUE(BitIdentical(a.lse, b.lse)) << "lse";
  EXPECT_TRUE(BitIdentical(a.dqkv, b.dqkv)) << "dqkv";
}

// The layer with kFlash against the cpu layer: output, input gradient, and the parameters'
// gradients added into random starting ones.
TEST_F(CudaFlashAttentionGpuTest, LayerMatchesCpu) {
  struct Case {
    int64_t batch, seq, n_embd, n_head;
  };
  for (const Case& c : {Case{2, 1, 8, 2}, Case{3, 70, 48, 3}, Case{2, 129, 256, 2}}) {
    SCOPED_TRACE(absl::StrCat("B ", c.batch, " T ", c.seq, " C ", c.n_embd, " H ", c.n_head));
    ParameterInitializer i1(3), i2(3);
    ASSERT_OK_AND_ASSIGN(auto cpu,
                         CausalSelfAttention::Create({.n_embd = c.n_embd, .n_head = c.n_head}, i1));
    ASSERT_OK_AND_ASSIGN(auto flash,
                         CausalSelfAttention::Create({.n_embd = c.n_embd,
                                                      .n_head = c.n_head,
                                                      .device = kCuda,
                                                      .kernel = AttentionKernel::kFlash},
                                                     i2));
    RandomizeAlike(*cpu, *flash, 50);
    const TensorPair x = RandomPair({c.batch, c.seq, c.n_embd}, 150, 2.0f);
    ASSERT_OK_AND_ASSIGN(Tensor y_cpu, cpu->Forward(x.cpu));
    ASSERT_OK_AND_ASSIGN(Tensor y_flash, flash->Forward(x.cuda));
    EXPECT_TRUE(Close(y_flash, y_cpu)) << "output";
    const TensorPair dy = RandomPair(y_cpu.shape(), 250);
    ASSERT_OK_AND_ASSIGN(Tensor dx_cpu, cpu->Backward(dy.cpu));
    ASSERT_OK_AND_ASSIGN(Tensor dx_flash, flash->Backward(dy.cuda));
    EXPECT_TRUE(Close(dx_flash, dx_cpu)) << "input gradient";
    testing::ExpectParametersClose(*cpu, *flash, "flash attention layer");
  }
}

// [B, T+1] u16 ids in [0, vocab), irregular and a function of `salt`.
Tensor Tokens(int64_t batch, int64_t seq_plus_one, int64_t vocab, int salt) {
  std::vector<uint16_t> ids(batch * seq_plus_one);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<uint16_t>((i * i * 31 + i * 7 + static_cast<size_t>(salt) * 101) % vocab);
  }
  return MakeTensor(Device::Cpu(), {batch, seq_plus_one}, ids).value();
}

// A whole training step of the tiny Gpt (vocab 500, block 64, 2 layers, 4 heads of 8) at
// T = 64, then the next step's loss: kFlash against kUnfused, both on kCuda.
TEST_F(CudaFlashAttentionGpuTest, TinyGptStepMatchesUnfused) {
  const GptConfig tiny = GptConfigNamed("tiny").value();
  ASSERT_OK_AND_ASSIGN(auto unfused, Gpt::Create({.config = tiny, .seed = 77, .device = kCuda}));
  ASSERT_OK_AND_ASSIGN(
      auto flash,
      Gpt::Create(
          {.config = tiny, .seed = 77, .device = kCuda, .attention = AttentionKernel::kFlash}));
  const Tensor tokens = Tokens(4, tiny.block_size + 1, tiny.vocab_size, 5);
  std::vector<double> losses[2];
  Gpt* models[2] = {unfused.get(), flash.get()};
  for (int m = 0; m < 2; ++m) {
    ASSERT_OK_AND_ASSIGN(auto optimizer, AdamW::Create(models[m]->Parameters()));
    for (int step = 0; step < 2; ++step) {
      ASSERT_OK(models[m]->ZeroGrad());
      ASSERT_OK_AND_ASSIGN(double loss, models[m]->Forward(tokens));
      losses[m].push_back(loss);
      ASSERT_OK(models[m]->Backward());
      if (step == 1) break;  // Its gradients are compared below.
      ASSERT_OK(ClipGradientNorm(models[m]->Parameters(), 1.0).status());
      ASSERT_OK(optimizer->Step(1e-3));
    }
  }
  for (int step = 0; step < 2; ++step) {
    EXPECT_NEAR(losses[1][step], losses[0][step], testing::kCudaRelTolerance * losses[0][step])
        << "loss of step " << step;
  }
  // After one AdamW step the key biases differ by rounding noise (their gradient is zero but
  // for rounding; cuda_gpt_test.cc), which the loss does not see; the gradients of the second
  // step are compared, not the values.
  std::vector<NamedParameter> a = unfused->Parameters(), b = flash->Parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name.ends_with("attn.c_attn.bias")) continue;
    EXPECT_TRUE(Close(b[i].parameter->grad, a[i].parameter->grad)) << "gradient of " << a[i].name;
  }
}

// A block that recomputes its activations runs the flash kernels again on the same data: the
// same bits, as two runs of one model.
TEST_F(CudaFlashAttentionGpuTest, RecomputedAndRepeatedRunsGiveTheSameBits) {
  const GptConfig tiny = GptConfigNamed("tiny").value();
  const Tensor tokens = Tokens(3, 50, tiny.vocab_size, 9);
  std::vector<std::unique_ptr<Gpt>> models;
  for (bool recompute : {false, false, true}) {
    ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny,
                                                  .seed = 78,
                                                  .recompute = recompute,
                                                  .device = kCuda,
                                                  .attention = AttentionKernel::kFlash}));
    models.push_back(std::move(model));
  }
  std::vector<double> losses;
  for (auto& model : models) {
    ASSERT_OK_AND_ASSIGN(double loss, model->Forward(tokens));
    losses.push_back(loss);
    ASSERT_OK(model->Backward());
  }
  EXPECT_EQ(losses[1], losses[0]);
  EXPECT_EQ(losses[2], losses[0]);
  std::vector<NamedParameter> a = models[0]->Parameters();
  for (int m = 1; m < 3; ++m) {
    std::vector<NamedParameter> b = models[m]->Parameters();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(BitIdentical(b[i].parameter->grad, a[i].parameter->grad))
          << (m == 1 ? "second run: " : "recomputed: ") << a[i].name;
    }
  }
}

// The bf16 tensor-core kernels (cuda_flash_attention_bf16.h), which the layers run under
// MatmulPrecision::kBf16 for head sizes that are multiples of 16, against the cpu attention in
// f32.
class CudaBf16FlashAttentionGpuTest : public CudaFlashAttentionGpuTest {};

// The tolerance of the bf16 kernels against f32: 4 u, u = 2^-8 the unit roundoff of bf16 (8
// significant bits, to nearest), for ‖cuda − cpu‖ / ‖cpu‖ and for each element's error against
// the tensor's largest |element|; for the log-sum-exp, 4 u absolute. A result goes through up
// to 5 roundings to bf16 (q and k into its scores; p or ds; the other operand, v, dout, k or q;
// dout into dp for the gradients), each a relative error of at most u and about 0.42 u root mean
// square, independent and of either sign, so that they add in quadrature to about 0.94 u per
// element (0.73 u for out, 3 roundings); the f32 accumulations add orders less. A score's error
// is absolute (q k^T cancels, the rounding of its terms does not): about 0.45 u r.m.s. for the
// tests' inputs (uniform within ±1.5) at any D, and lse, a weighted mean of scores, errs alike.
// On bf16 arrays (as the layer keeps them) each result is rounded once more as it is stored, and
// the gradients' delta takes the rounding of out: about 1.05 u r.m.s. for the gradients and
// 0.85 u for out. 4 u is 4 times those root mean squares, room for the largest of many elements. In
// a cpu emulation of CUDA (threads, barriers, ldmatrix, mma.sync and cp.async as the PTX manual
// defines them; cuda_flash_attention_emulation_test.cc, label emu) over 11 shapes with inputs
// within ±2, the mma.sync kernels erred by at most 0.73 u (out) and 1.15 u (dq, dk, dv) of the
// largest element on bf16 arrays.
// The emulation sums each product exactly and rounds once to f32; the tensor cores' own order
// and rounding of that sum are not specified, so the GPU's figures will differ slightly.
constexpr double kBf16FlashTolerance = 8.0 / 512;

// The largest |element| of a tensor.
double Largest(const Tensor& t) {
  const std::vector<float> values = testing::ReadTensor<float>(t).value();
  double largest = 0;
  for (float y : values) largest = std::max(largest, std::abs(static_cast<double>(y)));
  return largest;
}

// Success when every element of `cuda` is within `bound` of its counterpart in `cpu`.
::testing::AssertionResult ElementsWithin(const Tensor& cuda, const Tensor& cpu, double bound) {
  const std::vector<float> a = testing::ReadTensor<float>(cuda).value();
  const std::vector<float> b = testing::ReadTensor<float>(cpu).value();
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::abs(static_cast<double>(a[i]) - b[i]) <= bound)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": cuda " << a[i] << ", cpu " << b[i] << ", bound " << bound;
    }
  }
  return ::testing::AssertionSuccess();
}

// `t` converted to `dtype` (Cast: bf16 rounded to nearest, ties to even), in a new tensor.
Tensor Converted(const Tensor& t, DType dtype) {
  Tensor converted = Tensor::Empty(t.shape(), dtype, t.device()).value();
  EXPECT_OK(Cast(t, converted));
  return converted;
}

// `t` (f32) rounded to the bf16 values it stands for, in f32.
Tensor RoundedToBf16(const Tensor& t) { return Converted(Converted(t, DType::kBF16), DType::kF32); }

TEST_F(CudaBf16FlashAttentionGpuTest, MatchesCpuWithinBf16Rounding) {
  // T = 1 (dq and dk are 0), T not a multiple of the 64-row tile, one tile, T = 1024 at GPT-2's
  // D = 64; D = 16, 32, 48 and 96 (padded to the kernels' 32, 64 or 128) and 128; H = 1 to 4.
  for (const ni::AttentionDims& d :
       {ni::AttentionDims{1, 1, 1, 64}, ni::AttentionDims{2, 1, 3, 16},
        ni::AttentionDims{2, 17, 2, 64}, ni::AttentionDims{1, 64, 1, 64},
        ni::AttentionDims{2, 100, 3, 64}, ni::AttentionDims{1, 257, 2, 64},
        ni::AttentionDims{2, 37, 4, 16}, ni::AttentionDims{1, 130, 1, 128},
        ni::AttentionDims{1, 257, 1, 128}, ni::AttentionDims{3, 65, 2, 32},
        ni::AttentionDims{1, 100, 2, 48}, ni::AttentionDims{1, 80, 1, 96},
        ni::AttentionDims{1, 1024, 2, 64}}) {
    SCOPED_TRACE(Describe(d));
    const int64_t c = d.heads * d.head_dim;
    const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 10 + d.seq, 1.5f);
    const TensorPair dout = RandomPair({d.batch, d.seq, c}, 11 + d.seq);
    const CpuAttention cpu = RunCpu(qkv.cpu, dout.cpu, d);
    const Tensor lse =
        F32Tensor(Device::Cpu(), {d.batch, d.heads, d.seq}, ReferenceLse(qkv.cpu, d));
    const FlashResult f32 = RunFlash(qkv.cuda, dout.cuda, d);
    const FlashResult bf16 = [&] {
      testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
      return RunFlash(qkv.cuda, dout.cuda, d);
    }();
    // And on bf16 arrays, as the layer keeps them under bf16 products.
    const FlashResult arrays =
        RunFlash(Converted(qkv.cuda, DType::kBF16), Converted(dout.cuda, DType::kBF16), d);
    for (const auto& [name, got, want] :
         {std::tuple{"out", bf16.out, cpu.out}, std::tuple{"dqkv", bf16.dqkv, cpu.dqkv},
          std::tuple{"out, bf16 arrays", Converted(arrays.out, DType::kF32), cpu.out},
          std::tuple{"dqkv, bf16 arrays", Converted(arrays.dqkv, DType::kF32), cpu.dqkv}}) {
      EXPECT_TRUE(Close(got, want, kBf16FlashTolerance)) << name;
      EXPECT_TRUE(ElementsWithin(got, want, kBf16FlashTolerance * Largest(want))) << name;
    }
    EXPECT_TRUE(ElementsWithin(bf16.lse, lse, kBf16FlashTolerance)) << "log-sum-exp, vs double";
    EXPECT_TRUE(BitIdentical(arrays.lse, bf16.lse)) << "log-sum-exp, bf16 arrays";
    // The tensor cores ran: bf16's rounding is far beyond the f32 kernels' (1e-7).
    EXPECT_FALSE(Close(bf16.out, f32.out, 1e-4)) << "the f32 kernels ran under kBf16";
  }
}

TEST_F(CudaBf16FlashAttentionGpuTest, TwoRunsGiveTheSameBits) {
  testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
  for (const ni::AttentionDims& d :
       {ni::AttentionDims{2, 300, 3, 64}, ni::AttentionDims{1, 200, 2, 128}}) {
    SCOPED_TRACE(Describe(d));
    const int64_t c = d.heads * d.head_dim;
    const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 20, 1.5f);
    const TensorPair dout = RandomPair({d.batch, d.seq, c}, 21);
    const FlashResult a = RunFlash(qkv.cuda, dout.cuda, d);
    const FlashResult b = RunFlash(qkv.cuda, dout.cuda, d);
    EXPECT_TRUE(BitIdentical(a.out, b.out)) << "out";
    EXPECT_TRUE(BitIdentical(a.lse, b.lse)) << "lse";
    EXPECT_TRUE(BitIdentical(a.dqkv, b.dqkv)) << "dqkv";
  }
}

// bf16 arrays (as the layer keeps them under bf16 products) give the bits of the f32 launch on
// f32 copies holding the same values, each result rounded to bf16: the kernels round f32 inputs
// to bf16 as they load them and copy bf16 ones as they are, read out (for each row's delta) as
// f32 either way, and round each f32 result as they store it. So the f32 backward below reads
// the forward's output rounded to bf16, as the bf16 one does. Whatever the precision: the dtype
// chooses the bf16 kernels. A head size they cannot take is an error, as are mixed dtypes.
TEST_F(CudaBf16FlashAttentionGpuTest, Bf16ArraysGiveTheBitsOfTheirF32Copies) {
  for (const ni::AttentionDims& d :
       {ni::AttentionDims{2, 100, 3, 64}, ni::AttentionDims{1, 257, 2, 128},
        ni::AttentionDims{2, 37, 4, 16}, ni::AttentionDims{1, 1, 1, 32}}) {
    SCOPED_TRACE(Describe(d));
    const int64_t c = d.heads * d.head_dim;
    const Shape shape{d.batch, d.seq, 3 * c};
    // Random values, and some -0s and bf16 subnormals, which the kernels must keep as they are.
    std::vector<float> values = testing::RandomValues(shape.numel(), 40 + d.seq, 1.5f);
    for (size_t i = 0; i < values.size(); i += 7) values[i] = i % 2 == 0 ? -0.0f : 3e-39f;
    const Tensor qkv16 = Converted(F32Tensor(kCuda, shape, values), DType::kBF16);
    const Tensor qkv32 = Converted(qkv16, DType::kF32);
    const Tensor dout16 = Converted(RandomPair({d.batch, d.seq, c}, 41 + d.seq).cuda, DType::kBF16);
    const Tensor dout32 = Converted(dout16, DType::kF32);
    FlashResult f32{Tensor::Empty({d.batch, d.seq, c}, DType::kF32, kCuda).value(),
                    Tensor::Empty({d.batch, d.heads, d.seq}, DType::kF32, kCuda).value(),
                    Tensor::Empty(shape, DType::kF32, kCuda).value()};
    {
      testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
      ASSERT_OK(ni::CudaFlashAttentionForward(qkv32, d, f32.out, f32.lse));
      ASSERT_OK(ni::CudaFlashAttentionBackward(dout32, qkv32, RoundedToBf16(f32.out), f32.lse, d,
                                               f32.dqkv));
    }
    const FlashResult bf16 = RunFlash(qkv16, dout16, d);  // Under f32 products.
    ASSERT_EQ(bf16.out.dtype(), DType::kBF16);
    EXPECT_TRUE(BitIdentical(Converted(bf16.out, DType::kF32), RoundedToBf16(f32.out))) << "out";
    EXPECT_TRUE(BitIdentical(bf16.lse, f32.lse)) << "lse";
    EXPECT_TRUE(BitIdentical(Converted(bf16.dqkv, DType::kF32), RoundedToBf16(f32.dqkv))) << "dqkv";
  }
  const ni::AttentionDims odd{1, 5, 2, 40};
  const auto empty = [](const Shape& shape, DType dtype) {
    return Tensor::Empty(shape, dtype, kCuda).value();
  };
  const Tensor qkv16 = empty({1, 5, 240}, DType::kBF16), out16 = empty({1, 5, 80}, DType::kBF16),
               dqkv16 = empty({1, 5, 240}, DType::kBF16), lse = empty({1, 2, 5}, DType::kF32);
  const absl::Status refused = ni::CudaFlashAttentionForward(qkv16, odd, out16, lse);
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  const absl::Status refused_back =
      ni::CudaFlashAttentionBackward(out16, qkv16, out16, lse, odd, dqkv16);
  EXPECT_TRUE(absl::IsInvalidArgument(refused_back)) << refused_back;
  // Mixed dtypes are refused, not misread, at a head size the kernels take.
  const ni::AttentionDims even{1, 5, 2, 32};
  const Tensor qkv32 = empty({1, 5, 192}, DType::kF32), out32 = empty({1, 5, 64}, DType::kF32),
               qkv = empty({1, 5, 192}, DType::kBF16), out = empty({1, 5, 64}, DType::kBF16),
               dqkv = empty({1, 5, 192}, DType::kBF16), lse16 = empty({1, 2, 5}, DType::kBF16);
  for (const absl::Status& mixed :
       {ni::CudaFlashAttentionForward(qkv, even, out32, lse),
        ni::CudaFlashAttentionForward(qkv32, even, out, lse),
        ni::CudaFlashAttentionForward(qkv, even, out, lse16),
        ni::CudaFlashAttentionBackward(out32, qkv, out, lse, even, dqkv),
        ni::CudaFlashAttentionBackward(out, qkv, out32, lse, even, dqkv),
        ni::CudaFlashAttentionBackward(out, qkv, out, lse, even, qkv32)}) {
    EXPECT_TRUE(absl::IsInvalidArgument(mixed)) << mixed;
  }
}

// The layer under bf16 products: c_attn writes q|k|v in bf16 (its bias rounded to bf16) for
// the bf16 kernels. Against the cpu layer under the cpu's emulation of bf16 products, within
// 1e-2 of the norms (CudaGptGpuTest's bf16 tolerance); two layers give the same bits.
TEST_F(CudaBf16FlashAttentionGpuTest, LayerMatchesTheCpusEmulationAndRepeats) {
  testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
  ParameterInitializer i1(4), i2(4), i3(4);
  const AttentionOptions o{.n_embd = 128, .n_head = 2};
  AttentionOptions flash_options = o;
  flash_options.device = kCuda;
  flash_options.kernel = AttentionKernel::kFlash;
  ASSERT_OK_AND_ASSIGN(auto cpu, CausalSelfAttention::Create(o, i1));
  ASSERT_OK_AND_ASSIGN(auto flash, CausalSelfAttention::Create(flash_options, i2));
  ASSERT_OK_AND_ASSIGN(auto again, CausalSelfAttention::Create(flash_options, i3));
  testing::CompareLayerUnderBf16(*cpu, *flash, *again, {2, 130, 128}, 60, 1e-2, DType::kF32);
}

// Head sizes that are not multiples of 16 keep the f32 kernels under kBf16: f32's tolerance.
TEST_F(CudaBf16FlashAttentionGpuTest, OtherHeadSizesRunTheF32Kernels) {
  testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
  for (const ni::AttentionDims& d :
       {ni::AttentionDims{2, 37, 3, 8}, ni::AttentionDims{1, 70, 2, 40}}) {
    SCOPED_TRACE(Describe(d));
    const int64_t c = d.heads * d.head_dim;
    const TensorPair qkv = RandomPair({d.batch, d.seq, 3 * c}, 30, 1.5f);
    const TensorPair dout = RandomPair({d.batch, d.seq, c}, 31);
    const CpuAttention cpu = RunCpu(qkv.cpu, dout.cpu, d);
    const FlashResult flash = RunFlash(qkv.cuda, dout.cuda, d);
    EXPECT_TRUE(Close(flash.out, cpu.out)) << "out";
    EXPECT_TRUE(Close(flash.dqkv, cpu.dqkv)) << "dqkv";
  }
}

// Needs no GPU: the option is checked before anything is allocated.
TEST(FlashAttentionOptionTest, IsRefusedOnTheCpuAndForHeadsOver128) {
  ParameterInitializer init(1);
  absl::StatusOr<std::unique_ptr<CausalSelfAttention>> on_cpu = CausalSelfAttention::Create(
      {.n_embd = 16, .n_head = 2, .kernel = AttentionKernel::kFlash}, init);
  ASSERT_FALSE(on_cpu.ok());
  EXPECT_EQ(on_cpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(on_cpu.status().message().find("CUDA devices only"), std::string::npos)
      << on_cpu.status();
  absl::StatusOr<std::unique_ptr<Gpt>> gpt =
      Gpt::Create({.config = GptConfigNamed("tiny").value(), .attention = AttentionKernel::kFlash});
  EXPECT_FALSE(gpt.ok());
  absl::StatusOr<std::unique_ptr<CausalSelfAttention>> wide = CausalSelfAttention::Create(
      {.n_embd = 258, .n_head = 2, .device = kCuda, .kernel = AttentionKernel::kFlash}, init);
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("at most 128"), std::string::npos) << wide.status();
}

}  // namespace
}  // namespace usine
