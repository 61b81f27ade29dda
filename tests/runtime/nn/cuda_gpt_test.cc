// The tiny Gpt and its optimizer on CUDA against the cpu, from the same seed and batch: the
// initial weights (bit for bit), the loss and every parameter's gradient (within
// testing::kCudaRelTolerance, cuda_compare.h), three AdamW steps with gradient clipping, and
// two CUDA runs bit for bit. Label `gpu`: skipped without a CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/kernels/copy.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/gpt_decoder.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "tests/runtime/nn/context_ids.h"
#include "tests/runtime/nn/cuda_compare.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::BitIdentical;
using testing::Close;
using testing::ContextIds;
using testing::F32Tensor;
using testing::kCuda;
using testing::MakeTensor;
using testing::RandomizeAlike;

class CudaGptGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    tiny_ = GptConfigNamed("tiny").value();  // vocab 500 (512 padded), block 64, 2 x 4 x 32.
  }
  std::unique_ptr<Gpt> Make(Device device, uint64_t seed = 1234) {
    absl::StatusOr<std::unique_ptr<Gpt>> m =
        Gpt::Create({.config = tiny_, .seed = seed, .device = device});
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }
  GptConfig tiny_;
};

// [B, T+1] u16 ids in [0, vocab), irregular and a function of `salt`.
Tensor Tokens(int64_t batch, int64_t seq_plus_one, int64_t vocab, int salt) {
  std::vector<uint16_t> ids(batch * seq_plus_one);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<uint16_t>((i * i * 31 + i * 7 + salt * 101) % vocab);
  }
  return MakeTensor(Device::Cpu(), {batch, seq_plus_one}, ids).value();
}

TEST_F(CudaGptGpuTest, InitialWeightsAreTheCpusBitForBit) {
  auto cpu = Make(Device::Cpu()), cuda = Make(kCuda);
  ASSERT_TRUE(cpu && cuda);
  std::vector<NamedParameter> a = cpu->Parameters(), b = cuda->Parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].parameter->value.device(), kCuda) << a[i].name;
    EXPECT_TRUE(BitIdentical(b[i].parameter->value, a[i].parameter->value)) << a[i].name;
  }
}

// T = 1, T odd, and T = block_size.
TEST_F(CudaGptGpuTest, LossAndEveryGradientMatchCpu) {
  struct Case {
    int64_t batch, seq;
  };
  for (const Case& c : {Case{2, 1}, Case{3, 17}, Case{4, 64}}) {
    SCOPED_TRACE(absl::StrCat("B ", c.batch, " T ", c.seq));
    auto cpu = Make(Device::Cpu()), cuda = Make(kCuda);
    ASSERT_TRUE(cpu && cuda);
    const Tensor tokens = Tokens(c.batch, c.seq + 1, tiny_.vocab_size, static_cast<int>(c.seq));
    ASSERT_OK_AND_ASSIGN(double loss_cpu, cpu->Forward(tokens));
    ASSERT_OK_AND_ASSIGN(double loss_cuda, cuda->Forward(tokens));
    EXPECT_NEAR(loss_cuda, loss_cpu, testing::kCudaRelTolerance * loss_cpu) << "loss";
    ASSERT_OK(cpu->Backward(0.5));
    ASSERT_OK(cuda->Backward(0.5));
    testing::ExpectParametersClose(*cpu, *cuda, "after Backward");
    // wte's padding rows: no token reaches them and no logit predicts them.
    const Tensor grad = cuda->Parameters()[0].parameter->grad;
    ASSERT_OK_AND_ASSIGN(std::vector<float> g, testing::ReadTensor<float>(grad));
    for (int64_t i = tiny_.vocab_size * tiny_.n_embd; i < grad.numel(); ++i) {
      ASSERT_EQ(g[i], 0.0f) << "wte grad element " << i << " (a padding row)";
    }
  }
}

// Backward adds into the gradients: random starting gradients and random weights (so that no
// term hides behind LayerNorm's 1 and the biases' 0).
TEST_F(CudaGptGpuTest, RandomWeightsAndAccumulatedGradientsMatchCpu) {
  auto cpu = Make(Device::Cpu()), cuda = Make(kCuda);
  ASSERT_TRUE(cpu && cuda);
  RandomizeAlike(*cpu, *cuda, 500);
  const Tensor tokens = Tokens(3, 30, tiny_.vocab_size, 7);
  ASSERT_OK_AND_ASSIGN(double loss_cpu, cpu->Forward(tokens));
  ASSERT_OK_AND_ASSIGN(double loss_cuda, cuda->Forward(tokens));
  EXPECT_NEAR(loss_cuda, loss_cpu, testing::kCudaRelTolerance * loss_cpu) << "loss";
  ASSERT_OK(cpu->Backward());
  ASSERT_OK(cuda->Backward());
  testing::ExpectParametersClose(*cpu, *cuda, "random weights");
}

TEST_F(CudaGptGpuTest, TokensOnTheDeviceGiveTheSameLoss) {
  auto model = Make(kCuda);
  ASSERT_TRUE(model);
  const Tensor tokens = Tokens(2, 9, tiny_.vocab_size, 3);
  ASSERT_OK_AND_ASSIGN(double on_host, model->Forward(tokens));
  ASSERT_OK(model->Backward());
  ASSERT_OK_AND_ASSIGN(Tensor on_device, Tensor::Empty(tokens.shape(), tokens.dtype(), kCuda));
  ASSERT_OK(Copy(tokens, on_device));
  ASSERT_OK_AND_ASSIGN(double from_device, model->Forward(on_device));
  EXPECT_EQ(from_device, on_host);
  ASSERT_OK(model->Backward());
}

// The losses of one AdamW step (lr 1e-2, gradients clipped to norm 0.05) per batch; the model
// is left as it ends.
std::vector<double> Train(Gpt& model, const std::vector<Tensor>& batches) {
  std::vector<double> losses;
  absl::StatusOr<std::unique_ptr<AdamW>> optimizer =
      AdamW::Create(model.Parameters(), {.weight_decay = 0.1});
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  if (!optimizer.ok()) return losses;
  for (const Tensor& batch : batches) {
    EXPECT_OK(model.ZeroGrad());
    absl::StatusOr<double> loss = model.Forward(batch);
    EXPECT_TRUE(loss.ok()) << loss.status();
    if (!loss.ok()) return losses;
    losses.push_back(*loss);
    EXPECT_OK(model.Backward());
    constexpr double kMaxNorm = 0.05;
    absl::StatusOr<double> norm = ClipGradientNorm(model.Parameters(), kMaxNorm);
    EXPECT_TRUE(norm.ok()) << norm.status();
    if (!norm.ok()) return losses;
    EXPECT_GT(*norm, kMaxNorm) << "the test means clipping to scale the gradients";
    EXPECT_OK((*optimizer)->Step(1e-2));
  }
  return losses;
}

// One batch three times, so that the loss falls.
std::vector<Tensor> Batches(int64_t vocab) {
  const Tensor batch = Tokens(4, 33, vocab, 1);
  return {batch, batch, batch};
}

TEST_F(CudaGptGpuTest, ThreeAdamWStepsWithClippingMatchCpu) {
  auto cpu = Make(Device::Cpu()), cuda = Make(kCuda);
  ASSERT_TRUE(cpu && cuda);
  const std::vector<double> loss_cpu = Train(*cpu, Batches(tiny_.vocab_size));
  const std::vector<double> loss_cuda = Train(*cuda, Batches(tiny_.vocab_size));
  ASSERT_EQ(loss_cpu.size(), 3u);
  ASSERT_EQ(loss_cuda.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(loss_cuda[i], loss_cpu[i], testing::kCudaRelTolerance * loss_cpu[i])
        << "step " << i;
  }
  EXPECT_LT(loss_cpu[2], loss_cpu[0]);  // It learns at all.
  // Attention's key bias has a gradient that is zero but for rounding (a constant added to
  // every key of a row leaves the row's softmax unchanged), so AdamW moves it by rounding
  // noise over eps: the cpu and the GPU agree on its size (about 1e-7, seen on an H100), not
  // its digits. Its slice is compared absolutely, every other value relatively.
  std::vector<NamedParameter> a = cpu->Parameters(), b = cuda->Parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    const Tensor& want = a[i].parameter->value;
    const Tensor& got = b[i].parameter->value;
    EXPECT_TRUE(Close(b[i].parameter->grad, a[i].parameter->grad)) << a[i].name;
    if (!a[i].name.ends_with("attn.c_attn.bias")) {
      EXPECT_TRUE(Close(got, want)) << "after 3 AdamW steps: value of " << a[i].name;
      continue;
    }
    const int64_t c = want.numel() / 3;
    for (int64_t part : {0, 2}) {  // q and v
      ASSERT_OK_AND_ASSIGN(Tensor got_part, got.View(part * c, {c}));
      ASSERT_OK_AND_ASSIGN(Tensor want_part, want.View(part * c, {c}));
      EXPECT_TRUE(Close(got_part, want_part)) << a[i].name << " part " << part;
    }
    ASSERT_OK_AND_ASSIGN(std::vector<float> got_k, testing::ReadTensor<float>(got));
    ASSERT_OK_AND_ASSIGN(std::vector<float> want_k, testing::ReadTensor<float>(want));
    for (int64_t j = c; j < 2 * c; ++j) {
      EXPECT_NEAR(got_k[j], want_k[j], 1e-5) << a[i].name << " key bias " << j - c;
    }
  }
}

TEST_F(CudaGptGpuTest, TwoCudaRunsAreBitIdentical) {
  auto a = Make(kCuda), b = Make(kCuda);
  ASSERT_TRUE(a && b);
  const std::vector<double> loss_a = Train(*a, Batches(tiny_.vocab_size));
  const std::vector<double> loss_b = Train(*b, Batches(tiny_.vocab_size));
  EXPECT_EQ(loss_a, loss_b);
  std::vector<NamedParameter> pa = a->Parameters(), pb = b->Parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(BitIdentical(pa[i].parameter->value, pb[i].parameter->value)) << pa[i].name;
    EXPECT_TRUE(BitIdentical(pa[i].parameter->grad, pb[i].parameter->grad)) << pa[i].name;
  }
}

// bf16 products (MatmulPrecision::kBf16: CUDA's bf16 tensor cores, the cpu's emulation of
// them). Both round the same operands to bf16; where an f32 activation differs between them by
// a rounding, its bf16 value may differ by one bf16 step (2^-8), so the tolerances are a
// thousand times the f32 ones: 1e-2 for the first step's gradients (from the same weights,
// bit for bit, on both devices), 1e-3 for the losses of three AdamW steps. Values and
// gradients after AdamW steps are not compared across devices: Adam's first update of an
// element is lr sign(g), so an element whose gradient is near zero moves by 2 lr (2e-2, the
// size of the weights) on one device and not the other; with bf16's relative differences near
// 1e-3 that is about 0.1% of the elements, some 3% of a tensor's norm (a cpu run against one
// whose weights differ by one f32 ulp: 1% to 4% after one step). Two CUDA runs still give the
// same bits.
TEST_F(CudaGptGpuTest, Bf16ProductsMatchTheCpusEmulationAndRepeatBitForBit) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  auto cpu = Make(Device::Cpu()), cuda = Make(kCuda), again = Make(kCuda);
  ASSERT_TRUE(cpu && cuda && again);
  const std::vector<Tensor> batches = Batches(tiny_.vocab_size);
  ASSERT_OK_AND_ASSIGN(double first_cpu, cpu->Forward(batches[0]));
  ASSERT_OK_AND_ASSIGN(double first_cuda, cuda->Forward(batches[0]));
  EXPECT_NEAR(first_cuda, first_cpu, 1e-3 * first_cpu) << "first loss";
  ASSERT_OK(cpu->Backward());
  ASSERT_OK(cuda->Backward());
  std::vector<NamedParameter> a = cpu->Parameters(), b = cuda->Parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(Close(b[i].parameter->grad, a[i].parameter->grad, 1e-2))
        << "first gradient of " << a[i].name;
  }
  // The second CUDA run does what the first did.
  ASSERT_OK(again->Forward(batches[0]).status());
  ASSERT_OK(again->Backward());
  const std::vector<double> loss_cpu = Train(*cpu, batches);
  const std::vector<double> loss_cuda = Train(*cuda, batches);
  const std::vector<double> loss_again = Train(*again, batches);
  ASSERT_EQ(loss_cpu.size(), 3u);
  ASSERT_EQ(loss_cuda.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(loss_cuda[i], loss_cpu[i], 1e-3 * loss_cpu[i]) << "step " << i;
  }
  EXPECT_LT(loss_cuda[2], loss_cuda[0]);
  EXPECT_EQ(loss_again, loss_cuda);
  std::vector<NamedParameter> c = again->Parameters();
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_TRUE(BitIdentical(b[i].parameter->value, c[i].parameter->value)) << b[i].name;
    EXPECT_TRUE(BitIdentical(b[i].parameter->grad, c[i].parameter->grad)) << b[i].name;
  }
}

// Multiplies `model`'s matrices by ten (GPT-2's initial scale to 0.2): attention then weighs
// the positions far from evenly, so that attending to the wrong ones moves the logits well past
// the tolerances below (gpt_decoder_test's RandomTiny, through the host for a CUDA model).
void ScaleMatrices(Gpt& model) {
  for (const NamedParameter& p : model.Parameters()) {
    const Tensor& value = p.parameter->value;
    if (value.rank() != 2) continue;  // LayerNorms and biases stay as they are.
    ASSERT_OK_AND_ASSIGN(Tensor host, Tensor::Empty(value.shape(), value.dtype()));
    ASSERT_OK(Copy(value, host));
    ASSERT_OK_AND_ASSIGN(const absl::Span<float> weights, host.host_span<float>());
    for (float& w : weights) w *= 10;
    ASSERT_OK(Copy(host, value));
  }
}

// The key/value cache on CUDA (cuda_cached_attention.h) against a forward pass over the whole
// context on the same model, after each chunk appended to two sequences: f32 with the unfused
// attention, and bf16 products with the flash kernel (where c_attn writes q|k|v in bf16 for the
// cached kernel to read). The tiny GPT at 128 wide with 2 heads of 64 (GPT-2's head size: two
// elements per lane, and the bf16 flash kernels, which take multiples of 16). Within 1e-4
// relative to max(1, |logit|) in f32: the cached kernel's online softmax and FMA dot products
// against cuBLASLt's products; 2e-2 under bf16 products, where the full pass's flash kernel
// rounds its probabilities to bf16 and the cached one does not. There the weights stay at
// GPT-2's scale: at ten times it, two blocks amplify that rounding to 6e-2 on the emulated GPU
// after 11 tokens; the f32 case is the one that shows a wrong context. The f32 decoder is also held
// to the cpu decoder of the same weights.
TEST_F(CudaGptGpuTest, DecoderWithAKeyValueCacheGivesTheWholeContextsLogits) {
  constexpr int64_t kBatch = 2;
  GptConfig config = tiny_;
  config.n_embd = 128;
  config.n_head = 2;
  const int64_t v = config.vocab_size;
  for (const bool bf16_flash : {false, true}) {
    SCOPED_TRACE(bf16_flash ? "bf16 products, flash attention" : "f32, unfused attention");
    testing::ScopedMatmulPrecision precision(bf16_flash ? MatmulPrecision::kBf16
                                                        : MatmulPrecision::kF32);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gpt> cuda,
                         Gpt::Create({.config = config,
                                      .seed = 21,
                                      .device = kCuda,
                                      .attention = bf16_flash ? AttentionKernel::kFlash
                                                              : AttentionKernel::kUnfused}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gpt> cpu, Gpt::Create({.config = config, .seed = 21}));
    if (!bf16_flash) {
      ScaleMatrices(*cuda);
      ScaleMatrices(*cpu);
    }
    ASSERT_OK_AND_ASSIGN(GptDecoder decoder, GptDecoder::Create(*cuda, kBatch));
    ASSERT_OK_AND_ASSIGN(GptDecoder cpu_decoder, GptDecoder::Create(*cpu, kBatch));
    const double tolerance = bf16_flash ? 2e-2 : 1e-4;
    int64_t length = 0;
    for (const int64_t chunk : {5, 1, 1, 3, 1, 20, 1}) {
      const Tensor fresh = ContextIds(kBatch, length, length + chunk);
      ASSERT_OK_AND_ASSIGN(const Tensor got, decoder.Append(fresh));
      ASSERT_OK_AND_ASSIGN(const Tensor on_cpu, cpu_decoder.Append(fresh));
      length += chunk;
      ASSERT_OK_AND_ASSIGN(const Tensor want, cuda->NextTokenLogits(ContextIds(kBatch, 0, length)));
      ASSERT_EQ(got.shape(), Shape({kBatch, v}));
      ASSERT_TRUE(got.device().is_cpu());
      ASSERT_OK_AND_ASSIGN(const std::vector<float> g, testing::ReadTensor<float>(got));
      ASSERT_OK_AND_ASSIGN(const std::vector<float> w, testing::ReadTensor<float>(want));
      ASSERT_OK_AND_ASSIGN(const std::vector<float> c, testing::ReadTensor<float>(on_cpu));
      double largest = 0;  // The logits are not all alike: a wrong context would show.
      for (size_t i = 0; i < w.size(); ++i) {
        const double scale = std::max(1.0, std::abs(static_cast<double>(w[i])));
        largest = std::max(largest, std::abs(static_cast<double>(w[i])));
        ASSERT_NEAR(g[i], w[i], tolerance * scale)
            << "after " << length << " tokens, row " << i / v << ", id " << i % v;
        if (!bf16_flash) {
          ASSERT_NEAR(g[i], c[i], tolerance * scale)
              << "cpu decoder, after " << length << " tokens, id " << i;
        }
      }
      if (!bf16_flash) {
        EXPECT_GT(largest, 0.5);
      }
    }
  }
}

// Recomputing a block's activations runs the same kernels on the same data.
TEST_F(CudaGptGpuTest, RecomputedActivationsGiveBitIdenticalGradients) {
  auto stored = Make(kCuda);
  absl::StatusOr<std::unique_ptr<Gpt>> recomputed =
      Gpt::Create({.config = tiny_, .seed = 1234, .recompute = true, .device = kCuda});
  ASSERT_TRUE(stored && recomputed.ok()) << recomputed.status();
  const Tensor tokens = Tokens(2, 25, tiny_.vocab_size, 9);
  ASSERT_OK_AND_ASSIGN(double l1, stored->Forward(tokens));
  ASSERT_OK_AND_ASSIGN(double l2, (*recomputed)->Forward(tokens));
  EXPECT_EQ(l1, l2);
  ASSERT_OK(stored->Backward());
  ASSERT_OK((*recomputed)->Backward());
  std::vector<NamedParameter> a = stored->Parameters(), b = (*recomputed)->Parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(BitIdentical(a[i].parameter->grad, b[i].parameter->grad)) << a[i].name;
  }
}

// The update itself: the CUDA kernel rounds as the cpu loop does, with and without a gradient
// scale (a clipping factor). With 5 layers the model has 64 parameters, more than one launch
// takes (kAdamWTensorsPerLaunch, 48): both launches, and weights that decay next to biases that
// do not, are checked.
TEST_F(CudaGptGpuTest, AdamWUpdateIsTheCpusBitForBit) {
  tiny_.n_layer = 5;
  auto cpu = Make(Device::Cpu()), cuda = Make(kCuda);
  ASSERT_TRUE(cpu && cuda);
  ASSERT_EQ(cpu->Parameters().size(), 64u);
  RandomizeAlike(*cpu, *cuda, 600);
  ASSERT_OK_AND_ASSIGN(auto opt_cpu, AdamW::Create(cpu->Parameters()));
  ASSERT_OK_AND_ASSIGN(auto opt_cuda, AdamW::Create(cuda->Parameters()));
  for (const float grad_scale : {1.0f, 0.37f}) {
    ASSERT_OK(opt_cpu->Step(1e-2, grad_scale));
    ASSERT_OK(opt_cuda->Step(1e-2, grad_scale));
  }
  std::vector<NamedParameter> a = cpu->Parameters(), b = cuda->Parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(BitIdentical(b[i].parameter->value, a[i].parameter->value)) << a[i].name;
  }
}

}  // namespace
}  // namespace usine
