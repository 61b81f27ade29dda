#include "runtime/nn/gpt.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/allocator.h"
#include "runtime/core/caching_allocator.h"
#include "runtime/core/float16.h"
#include "runtime/core/op_timeline.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/init.h"
#include "runtime/optim/adamw.h"
#include "tests/runtime/nn/gradient_check.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// A small model for the f64 gradient check: vocab 40 (padded to 128), 2 layers.
GptConfig Small() { return GptConfig{"small", 40, 8, 2, 2, 8}; }

// [B, T+1] ids in [0, vocab), a function of `salt`.
template <typename Id>
Tensor Tokens(int64_t batch, int64_t seq_plus_one, int64_t vocab, int salt) {
  std::vector<Id> ids(batch * seq_plus_one);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<Id>((i * 37 + salt * 11) % vocab);
  return MakeTensor(Device::Cpu(), {batch, seq_plus_one}, ids).value();
}

TEST(GptConfig, PresetsAndPaddedVocabulary) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  EXPECT_EQ(gpt2.vocab_size, 50257);
  EXPECT_EQ(gpt2.padded_vocab(), 50304);
  EXPECT_EQ(gpt2.n_layer, 12);
  EXPECT_EQ(gpt2.n_embd, 768);
  for (const char* name : {"tiny", "gpt2-medium", "gpt2-large", "gpt2-xl"}) {
    ASSERT_OK_AND_ASSIGN(GptConfig c, GptConfigNamed(name));
    EXPECT_OK(c.Validate());
    EXPECT_EQ(c.padded_vocab() % 128, 0) << name;
  }
  EXPECT_EQ(GptConfigNamed("gpt2-xl")->n_head, 25);
  EXPECT_THAT(std::string(GptConfigNamed("gpt3").status().message()), HasSubstr("'gpt3'"));
  GptConfig bad = Small();
  bad.n_head = 3;
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("n_head 3 does not divide"));
}

TEST(Gpt, ParametersHaveGpt2NamesShapesAndDecayFlags) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 1}));
  std::vector<NamedParameter> params = model->Parameters();
  ASSERT_EQ(params.size(), 2u + 12u * 2 + 2u);
  EXPECT_EQ(params[0].name, "wte.weight");
  EXPECT_EQ(params[0].parameter->value.shape(), Shape({512, 32}));
  EXPECT_EQ(params[1].name, "wpe.weight");
  EXPECT_EQ(params[2].name, "h.0.ln_1.weight");
  EXPECT_FALSE(params[2].parameter->decay);
  EXPECT_EQ(params[4].name, "h.0.attn.c_attn.weight");
  EXPECT_EQ(params[4].parameter->value.shape(), Shape({96, 32}));
  EXPECT_TRUE(params[4].parameter->decay);
  EXPECT_EQ(params[5].name, "h.0.attn.c_attn.bias");
  EXPECT_FALSE(params[5].parameter->decay);
  EXPECT_EQ(params[6].name, "h.0.attn.c_proj.weight");
  EXPECT_EQ(params[10].name, "h.0.mlp.c_fc.weight");
  EXPECT_EQ(params[12].name, "h.0.mlp.c_proj.weight");
  EXPECT_EQ(params[14].name, "h.1.ln_1.weight");
  EXPECT_EQ(params.back().name, "ln_f.bias");
  StateDict state;
  ASSERT_OK(model->AddToStateDict(state, "model/"));
  EXPECT_EQ(state.tensors().size(), params.size());
  EXPECT_EQ(state.tensors().count("model/h.1.mlp.c_fc.bias"), 1u);
}

TEST(Gpt, InitialisationIsGpt2sAndDependsOnlyOnTheSeed) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto a, Gpt::Create({.config = tiny, .seed = 7}));
  ASSERT_OK_AND_ASSIGN(auto b, Gpt::Create({.config = tiny, .seed = 7}));
  std::vector<NamedParameter> pa = a->Parameters(), pb = b->Parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> va, ReadTensor<float>(pa[i].parameter->value));
    ASSERT_OK_AND_ASSIGN(std::vector<float> vb, ReadTensor<float>(pb[i].parameter->value));
    EXPECT_EQ(va, vb) << pa[i].name;
    double sum_sq = 0;
    for (float v : va) sum_sq += static_cast<double>(v) * v;
    const double rms = std::sqrt(sum_sq / static_cast<double>(va.size()));
    const std::string& name = pa[i].name;
    if (name.ends_with("bias")) {
      EXPECT_EQ(rms, 0.0) << name;
    } else if (name.find("ln_") != std::string::npos) {
      EXPECT_EQ(rms, 1.0) << name;
    } else if (name.ends_with("c_proj.weight")) {
      EXPECT_NEAR(rms, 0.02 / std::sqrt(4.0), 0.002) << name;  // 2 layers.
    } else if (name == "wte.weight") {
      // Rows [500, 512) are padding, zero: the rms over all rows is 0.02 * sqrt(500/512).
      EXPECT_NEAR(rms, 0.02 * std::sqrt(500.0 / 512.0), 0.001) << name;
      for (size_t j = 500 * 32; j < va.size(); ++j) ASSERT_EQ(va[j], 0.0f) << j;
    } else {
      EXPECT_NEAR(rms, 0.02, 0.002) << name;
    }
  }
}

// At initialisation the logits are near zero, so the loss is near ln(vocab): the padding
// columns are not part of the softmax (ln(512) = 6.238 would be 0.024 above ln(500) = 6.215).
TEST(Gpt, LossAtInitialisationIsLnVocab) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 3}));
  ASSERT_OK_AND_ASSIGN(double loss, model->Forward(Tokens<uint16_t>(4, 33, 500, 1)));
  EXPECT_NEAR(loss, std::log(500.0), 0.015);
}

TEST(Gpt, BackwardMatchesFiniteDifferencesInF64) {
  ASSERT_OK_AND_ASSIGN(auto model,
                       Gpt::Create({.config = Small(), .seed = 5, .dtype = DType::kF64}));
  testing::RandomizeParameters(*model, 60);
  // Keep wte's padding rows at zero, as the model has them.
  const Tensor wte = model->Parameters()[0].parameter->value;
  ASSERT_OK(Fill(wte.Slice(40, 128).value(), 0.0));
  const Tensor tokens = Tokens<int32_t>(2, 6, 40, 2);
  ASSERT_OK(model->Forward(tokens).status());
  ASSERT_OK(model->Backward(1.5));
  testing::ExpectParameterGradientsMatch(
      *model, [&] { return 1.5 * model->Forward(tokens).value(); }, 200);
  // The padding rows of wte get no gradient: no token reaches them and no logit predicts them.
  const Tensor grad = model->Parameters()[0].parameter->grad;
  const double* g = static_cast<const double*>(grad.raw_data());
  for (int64_t i = 40 * 8; i < grad.numel(); ++i) ASSERT_EQ(g[i], 0.0) << i;
}

TEST(Gpt, RecomputedActivationsGiveBitIdenticalGradients) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto stored, Gpt::Create({.config = tiny, .seed = 9}));
  ASSERT_OK_AND_ASSIGN(auto recomputed,
                       Gpt::Create({.config = tiny, .seed = 9, .recompute = true}));
  const Tensor tokens = Tokens<uint16_t>(2, 17, 500, 4);
  ASSERT_OK_AND_ASSIGN(double l1, stored->Forward(tokens));
  ASSERT_OK_AND_ASSIGN(double l2, recomputed->Forward(tokens));
  EXPECT_EQ(l1, l2);
  ASSERT_OK(stored->Backward());
  ASSERT_OK(recomputed->Backward());
  std::vector<NamedParameter> a = stored->Parameters(), b = recomputed->Parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(ReadTensor<float>(a[i].parameter->grad).value(),
              ReadTensor<float>(b[i].parameter->grad).value())
        << a[i].name;
  }
}

// Plain SGD (lr 1) on one batch: in 300 steps the tiny model memorises it (the loss falls
// from ln(500) = 6.2 to below 0.1).
TEST(Gpt, OverfitsOneBatch) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 11}));
  const Tensor tokens = Tokens<uint16_t>(4, 17, 500, 5);
  double loss = 0;
  for (int step = 0; step < 300; ++step) {
    ASSERT_OK(model->ZeroGrad());
    ASSERT_OK_AND_ASSIGN(loss, model->Forward(tokens));
    ASSERT_OK(model->Backward());
    for (const NamedParameter& p : model->Parameters()) {
      ASSERT_OK(Axpy(-1.0f, p.parameter->grad, p.parameter->value));
    }
  }
  EXPECT_LT(loss, 0.1);
}

// The layers mark their operations on the device's timeline (OpTimeline, `usine bench train
// --profile`): every block's sublayers once per layer and direction, the model's ends once per
// direction, the cross-entropy once (its gradient is written by the forward pass), and no other
// name.
TEST(Gpt, ForwardAndBackwardMarkEveryOperationOnTheTimeline) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 11}));
  ASSERT_OK(OpTimeline::Start(Device::Cpu()));
  ASSERT_OK(model->ZeroGrad());
  ASSERT_OK(model->Forward(Tokens<uint16_t>(2, 17, 500, 5)).status());
  ASSERT_OK(model->Backward());
  ASSERT_OK_AND_ASSIGN(const std::vector<OpTime> ops, OpTimeline::Stop());
  absl::flat_hash_map<std::string, int64_t> counts;
  for (const OpTime& op : ops) counts[op.name] = op.count;
  const int64_t layers = tiny.n_layer;
  for (const char* direction : {" forward", " backward"}) {
    for (const char* sublayer : {"ln_1", "attn.c_attn", "attn.core", "attn.c_proj", "ln_2"}) {
      EXPECT_EQ(counts[absl::StrCat(sublayer, direction)], layers) << sublayer << direction;
    }
    for (const char* once : {"embed", "ln_f", "lm_head"}) {
      EXPECT_EQ(counts[absl::StrCat(once, direction)], 1) << once << direction;
    }
  }
  // The GELU runs with c_fc forward and with c_proj backward (its product applies the
  // derivative).
  for (const char* op : {"mlp.c_fc+gelu forward", "mlp.c_proj forward", "mlp.c_proj+gelu backward",
                         "mlp.c_fc backward"}) {
    EXPECT_EQ(counts[op], layers) << op;
  }
  // No residual sums of their own: forward, each c_proj's product adds its output to the
  // stream; backward, each LayerNorm's pass joins the skip's gradient.
  EXPECT_FALSE(counts.contains("residual forward"));
  EXPECT_EQ(counts["cross_entropy forward and backward"], 1);
  EXPECT_EQ(counts["zero_grad"], 1);
  EXPECT_EQ(counts.size(), 2 * 10 + 3u);  // The above and kUnmarkedOp, nothing else.
}

// bf16 products (MatmulPrecision::kBf16, here the cpu's emulation): the loss at
// initialisation within 1e-3 of the f32 one but not equal to it (the rounding takes effect);
// SGD on one batch follows the f32 losses within 1% for 10 steps (later the two paths part, by
// up to a fifth, as any two roundings of this steep descent do) and memorises the batch as
// f32 does: both below 0.15 after 100 steps, from ln(500) = 6.2.
TEST(Gpt, Bf16ProductsTrainAsF32Does) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  const Tensor tokens = Tokens<uint16_t>(4, 17, 500, 5);
  // The losses of 100 SGD steps at lr 0.3 from seed 11.
  const auto train = [&](MatmulPrecision precision) -> absl::StatusOr<std::vector<double>> {
    testing::ScopedMatmulPrecision scoped(precision);
    ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = tiny, .seed = 11}));
    std::vector<double> losses;
    for (int step = 0; step < 100; ++step) {
      RETURN_IF_ERROR(model->ZeroGrad());
      ASSIGN_OR_RETURN(const double loss, model->Forward(tokens));
      losses.push_back(loss);
      RETURN_IF_ERROR(model->Backward());
      for (const NamedParameter& p : model->Parameters()) {
        RETURN_IF_ERROR(Axpy(-0.3f, p.parameter->grad, p.parameter->value));
      }
    }
    return losses;
  };
  ASSERT_OK_AND_ASSIGN(const std::vector<double> f32, train(MatmulPrecision::kF32));
  ASSERT_OK_AND_ASSIGN(const std::vector<double> bf16, train(MatmulPrecision::kBf16));
  EXPECT_NE(bf16[0], f32[0]);
  EXPECT_NEAR(bf16[0], f32[0], 1e-3 * f32[0]);
  for (size_t i = 0; i <= 10; ++i) EXPECT_NEAR(bf16[i], f32[i], 0.01 * f32[i]) << "step " << i;
  EXPECT_LT(f32.back(), 0.15);
  EXPECT_LT(bf16.back(), 0.15);
}

// An initializer that draws nothing leaves the tensors as they are and takes the offsets a
// drawing one takes, so a model built without drawing has the parameters' shapes and order.
TEST(Gpt, WithoutInitializationNothingIsDrawn) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({3, 5}, DType::kF32));
  ASSERT_OK(Fill(a, 7.0f));
  ParameterInitializer none(4, {.draw = false}), drawing(4);
  ASSERT_OK(none.Normal(a, 0.02));
  ASSERT_OK_AND_ASSIGN(const std::vector<float> kept, ReadTensor<float>(a));
  EXPECT_EQ(kept, std::vector<float>(15, 7.0f));
  ASSERT_OK(drawing.Normal(a, 0.02));
  EXPECT_EQ(none.offset(), drawing.offset());
  ASSERT_OK_AND_ASSIGN(auto drawn, Gpt::Create({.config = Small(), .seed = 1}));
  ASSERT_OK_AND_ASSIGN(auto unset,
                       Gpt::Create({.config = Small(), .seed = 1, .initialize = false}));
  ASSERT_EQ(drawn->Parameters().size(), unset->Parameters().size());
  for (size_t i = 0; i < drawn->Parameters().size(); ++i) {
    EXPECT_EQ(drawn->Parameters()[i].name, unset->Parameters()[i].name);
    EXPECT_EQ(drawn->Parameters()[i].parameter->value.shape(),
              unset->Parameters()[i].parameter->value.shape());
  }
}

// A model built without gradients computes what one with them computes, holds no gradient
// tensor, and is refused by everything that would need one.
TEST(Gpt, WithoutGradientsForwardIsTheSameAndTrainingIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto trained, Gpt::Create({.config = Small(), .seed = 3}));
  ASSERT_OK_AND_ASSIGN(auto inference,
                       Gpt::Create({.config = Small(), .seed = 3, .gradients = false}));
  for (const NamedParameter& p : inference->Parameters()) {
    EXPECT_FALSE(p.parameter->grad.defined()) << p.name;
  }
  const Tensor tokens = Tokens<uint16_t>(2, 7, 40, 11);
  ASSERT_OK_AND_ASSIGN(const double expected, trained->Forward(tokens));
  ASSERT_OK_AND_ASSIGN(const double loss, inference->Forward(tokens));
  EXPECT_EQ(loss, expected);
  const absl::Status backward = inference->Backward();
  EXPECT_TRUE(absl::IsFailedPrecondition(backward)) << backward;
  EXPECT_THAT(std::string(backward.message()), HasSubstr("without gradients"));
  const absl::Status zero = inference->ZeroGrad();
  EXPECT_TRUE(absl::IsFailedPrecondition(zero)) << zero;
  EXPECT_THAT(std::string(zero.message()), HasSubstr("parameter wte.weight has no gradient"));
  const absl::Status adamw = AdamW::Create(inference->Parameters()).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(adamw)) << adamw;
  EXPECT_THAT(std::string(adamw.message()), HasSubstr("AdamW: parameter wte.weight"));
}

// Without gradients a forward pass holds one block's activations at a time, and so does
// InferenceLoss of a model with them: their peak of host memory (the caching allocator's) is a
// fraction of the peak of a Forward that keeps every block's for Backward.
TEST(Gpt, WithoutGradientsForwardHoldsOneBlocksActivationsAtATime) {
  auto* host = dynamic_cast<CachingAllocator*>(&HostAllocator());
  if (host == nullptr) GTEST_SKIP() << "the host allocator caches nothing (AddressSanitizer)";
  GptConfig config = Small();
  config.n_layer = 8;
  const Tensor tokens = Tokens<uint16_t>(4, 9, 40, 5);
  auto trained = Gpt::Create({.config = config, .seed = 2}).value();
  auto inference = Gpt::Create({.config = config, .seed = 2, .gradients = false}).value();
  size_t kept_after = 0;  // What the last pass left allocated.
  const auto peak_of = [&](const std::function<absl::StatusOr<double>()>& pass,
                           double* loss) -> size_t {
    host->ResetPeak();
    const size_t before = host->stats().allocated_bytes;
    absl::StatusOr<double> got = pass();
    EXPECT_OK(got.status());
    *loss = got.value_or(0);
    kept_after = host->stats().allocated_bytes - before;
    return host->stats().peak_allocated_bytes - before;
  };
  double kept_loss = 0, dropped_loss = 0, inference_loss = 0;
  const size_t kept = peak_of([&] { return trained->Forward(tokens); }, &kept_loss);
  trained->ReleaseActivations();
  const size_t dropped = peak_of([&] { return inference->Forward(tokens); }, &dropped_loss);
  EXPECT_EQ(kept_after, 0u) << "left by Forward without gradients";
  const size_t evaluated = peak_of([&] { return trained->InferenceLoss(tokens); }, &inference_loss);
  EXPECT_EQ(kept_after, 0u) << "left by InferenceLoss";
  EXPECT_LT(3 * dropped, kept) << "peak " << dropped << " B without gradients, " << kept
                               << " B with";
  EXPECT_LT(3 * evaluated, kept) << "peak " << evaluated << " B for InferenceLoss";
  EXPECT_EQ(dropped_loss, kept_loss);
  EXPECT_EQ(inference_loss, kept_loss);
  EXPECT_TRUE(absl::IsFailedPrecondition(trained->Backward()));  // Nothing was kept.
}

TEST(Gpt, TokenErrorsNameThePosition) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 1}));
  ASSERT_OK_AND_ASSIGN(Tensor tokens,
                       MakeTensor(Device::Cpu(), {1, 4}, std::vector<uint16_t>{1, 2, 40, 3}));
  EXPECT_THAT(std::string(model->Forward(tokens).status().message()),
              HasSubstr("token 40 at [0, 2] is outside the vocabulary [0, 40)"));
  EXPECT_THAT(std::string(model->Forward(Tokens<uint16_t>(1, 10, 40, 1)).status().message()),
              HasSubstr("1 <= T <= 8"));
  EXPECT_TRUE(absl::IsFailedPrecondition(model->Backward()));
}

// Logits are what Forward's loss is made of: the mean over positions of log-sum-exp minus the
// target's logit gives back the loss, and the padding columns are not in them.
TEST(Gpt, LogitsGiveForwardsLoss) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 5}));
  const int64_t batch = 2, seq = 7;
  const Tensor tokens = Tokens<int32_t>(batch, seq + 1, Small().vocab_size, 3);
  ASSERT_OK_AND_ASSIGN(const double loss, model->Forward(tokens));
  model->ReleaseActivations();
  ASSERT_OK_AND_ASSIGN(Tensor inputs, Tensor::Empty({batch, seq}, DType::kI32));
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> ids, ReadTensor<int32_t>(tokens));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      static_cast<int32_t*>(inputs.raw_data())[b * seq + t] = ids[b * (seq + 1) + t];
    }
  }
  ASSERT_OK_AND_ASSIGN(Tensor logits, model->Logits(inputs));
  ASSERT_EQ(logits.shape(), Shape({batch, seq, Small().vocab_size}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> l, ReadTensor<float>(logits));
  double sum = 0;
  const int64_t v = Small().vocab_size;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      const float* row = &l[(b * seq + t) * v];
      double max = row[0], z = 0;
      for (int64_t j = 1; j < v; ++j) max = std::max<double>(max, row[j]);
      for (int64_t j = 0; j < v; ++j) z += std::exp(row[j] - max);
      sum += max + std::log(z) - row[ids[b * (seq + 1) + t + 1]];
    }
  }
  EXPECT_NEAR(sum / (batch * seq), loss, 1e-5 * loss);
  // Logits keep nothing for a Backward.
  EXPECT_THAT(std::string(model->Backward().message()), HasSubstr("before Forward"));
  ASSERT_OK_AND_ASSIGN(Tensor flat, Tensor::Empty({3}, DType::kI32));
  EXPECT_THAT(std::string(model->Logits(flat).status().message()), HasSubstr("expected [B, T]"));
}

// The mean over positions of log-sum-exp minus the target's logit, in double, of logits [N, V]
// (rounded to bf16 first with `rounded`) and the targets of `tokens` [B, T+1].
double LossOfLogits(const std::vector<float>& logits, const std::vector<int32_t>& ids,
                    int64_t batch, int64_t seq, int64_t vocab, bool rounded) {
  double sum = 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      std::vector<double> row(logits.begin() + (b * seq + t) * vocab,
                              logits.begin() + (b * seq + t + 1) * vocab);
      if (rounded) {
        for (double& x : row) x = BFloat16::FromFloat(static_cast<float>(x)).ToFloat();
      }
      const double max = *std::max_element(row.begin(), row.end());
      double z = 0;
      for (double x : row) z += std::exp(x - max);
      sum += max + std::log(z) - row[ids[b * (seq + 1) + t + 1]];
    }
  }
  return sum / static_cast<double>(batch * seq);
}

// Under bf16 products the loss is computed from the logits as bf16 holds them, the output of
// the vocabulary projection on CUDA, which the cpu's emulation rounds to: Forward's loss is
// that of Logits' f32 values rounded to bf16 (to f32's precision), and measurably not that of
// the values as they are.
TEST(Gpt, Bf16ProductsTakeTheLossFromBf16Logits) {
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 5}));
  const int64_t batch = 2, seq = 7, vocab = Small().vocab_size;
  const Tensor tokens = Tokens<int32_t>(batch, seq + 1, vocab, 3);
  ASSERT_OK_AND_ASSIGN(const double loss, model->Forward(tokens));
  model->ReleaseActivations();
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> ids, ReadTensor<int32_t>(tokens));
  ASSERT_OK_AND_ASSIGN(Tensor inputs, Tensor::Empty({batch, seq}, DType::kI32));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      static_cast<int32_t*>(inputs.raw_data())[b * seq + t] = ids[b * (seq + 1) + t];
    }
  }
  ASSERT_OK_AND_ASSIGN(const Tensor logits, model->Logits(inputs));
  ASSERT_OK_AND_ASSIGN(const std::vector<float> l, ReadTensor<float>(logits));
  const double of_rounded = LossOfLogits(l, ids, batch, seq, vocab, /*rounded=*/true);
  const double of_exact = LossOfLogits(l, ids, batch, seq, vocab, /*rounded=*/false);
  // Here the rounding moves the loss by 2e-6 of it; f32's own error is far below that.
  EXPECT_NEAR(loss, of_rounded, 2e-7 * loss);
  EXPECT_GT(std::abs(loss - of_exact), 1e-6 * loss);
}

TEST(Gpt, NextTokenLogitsAreLogitsAtTheLastPosition) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 6}));
  const int64_t batch = 3, seq = 5, v = Small().vocab_size;
  const Tensor inputs = Tokens<uint16_t>(batch, seq, v, 4);
  ASSERT_OK_AND_ASSIGN(Tensor all, model->Logits(inputs));
  ASSERT_OK_AND_ASSIGN(Tensor next, model->NextTokenLogits(inputs));
  ASSERT_EQ(next.shape(), Shape({batch, v}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> a, ReadTensor<float>(all));
  ASSERT_OK_AND_ASSIGN(std::vector<float> n, ReadTensor<float>(next));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < v; ++j) {
      EXPECT_NEAR(n[b * v + j], a[(b * seq + seq - 1) * v + j], 1e-6)
          << "row " << b << ", id " << j;
    }
  }
  // One row (a view of the hidden states, no copy) gives the same.
  ASSERT_OK_AND_ASSIGN(Tensor row, inputs.Slice(1, 2));
  ASSERT_OK_AND_ASSIGN(std::vector<float> one, ReadTensor<float>(*model->NextTokenLogits(row)));
  for (int64_t j = 0; j < v; ++j) EXPECT_NEAR(one[j], n[v + j], 1e-6) << "id " << j;
  EXPECT_THAT(std::string(model->Backward().message()), HasSubstr("before Forward"));
  ASSERT_OK_AND_ASSIGN(Tensor long_inputs, Tensor::Empty({1, Small().block_size + 1}, DType::kI32));
  EXPECT_THAT(std::string(model->NextTokenLogits(long_inputs).status().message()),
              HasSubstr("Gpt::NextTokenLogits inputs: expected [B, T] with 1 <= T <= 8"));
}

TEST(GptConfig, JsonRoundTripsAndErrorsNameTheField) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  gpt2.name = "my \"gpt\"";
  const std::string json = GptConfigToJson(gpt2);
  EXPECT_EQ(json, R"({"name":"my \"gpt\"","vocab_size":50257,"block_size":1024,"n_layer":12,)"
                  R"("n_head":12,"n_embd":768,"padded_vocab":50304})");
  ASSERT_OK_AND_ASSIGN(GptConfig back, GptConfigFromJson(json));
  EXPECT_EQ(back.name, gpt2.name);
  EXPECT_EQ(back.vocab_size, 50257);
  EXPECT_EQ(back.block_size, 1024);
  EXPECT_EQ(back.n_layer, 12);
  EXPECT_EQ(back.n_head, 12);
  EXPECT_EQ(back.n_embd, 768);
  // As `usine train` writes it (spaces), padded_vocab optional.
  ASSERT_OK_AND_ASSIGN(GptConfig spaced,
                       GptConfigFromJson(R"({"name": "tiny", "vocab_size": 500, "block_size": 64, )"
                                         R"("n_layer": 2, "n_head": 4, "n_embd": 32})"));
  EXPECT_EQ(spaced.padded_vocab(), 512);
  const auto message = [](const std::string& text) {
    absl::StatusOr<GptConfig> c = GptConfigFromJson(text);
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
    return std::string(c.status().message());
  };
  EXPECT_THAT(message("[1, 2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(message("{\"name\": "), HasSubstr("not a JSON object"));
  EXPECT_THAT(message(R"({"vocab_size": 5})"), HasSubstr("name: expected a string, got null"));
  EXPECT_THAT(message(R"({"name": "x", "vocab_size": 5, "block_size": "64"})"),
              HasSubstr("block_size: expected an integer, got \"64\""));
  EXPECT_THAT(message(R"({"name": "x", "vocab_size": 500, "block_size": 64, "n_layer": 2, )"
                      R"("n_head": 4, "n_embd": 32, "padded_vocab": 500})"),
              HasSubstr("padded_vocab: expected 512"));
}

}  // namespace
}  // namespace usine
