#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/kernels/elementwise.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/module.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// A user-written module with a decayed f32 "weight" [2] and an undecayed "bias" [1].
class TwoParameters : public Module {
 public:
  static std::unique_ptr<TwoParameters> Create(DType bias_dtype = DType::kF32) {
    auto m = std::make_unique<TwoParameters>();
    m->weight = m->AddParameter("weight", {2}, DType::kF32, Device::Cpu(), true).value();
    m->bias = m->AddParameter("bias", {1}, bias_dtype, Device::Cpu(), false).value();
    return m;
  }
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;
};

void Set(const Tensor& t, std::vector<float> values) {
  std::copy(values.begin(), values.end(), static_cast<float*>(t.raw_data()));
}

// lr 0.1, beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1; every element starts at 1 and
// gets the gradients 0.5, -1, 2. Step 1 by hand: the weight decays to 1 - 0.1 * 0.1 = 0.99;
// m = 0.05, v = 0.0125; bias-corrected 0.5 and 0.25; p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8)
// = 0.890000002 (the bias, not decayed: 0.900000002). Steps 2 and 3 follow from the same
// formulas (adamw.h), evaluated in double.
TEST(AdamW, MatchesHandComputedStepsWithDecayOnlyOnWeights) {
  auto module = TwoParameters::Create();
  ASSERT_OK_AND_ASSIGN(
      auto adamw, AdamW::Create(module->Parameters(),
                                {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1}));
  Set(module->weight->value, {1, 1});
  Set(module->bias->value, {1});
  const double want_weight[] = {0.890000002, 0.9174373965715928, 0.8670344184598192};
  const double want_bias[] = {0.900000002, 0.9363373965915929, 0.8951087924455352};
  const float grads[] = {0.5f, -1.0f, 2.0f};
  for (int step = 0; step < 3; ++step) {
    Set(module->weight->grad, {grads[step], grads[step]});
    Set(module->bias->grad, {grads[step]});
    ASSERT_OK(adamw->Step(0.1));
    EXPECT_EQ(adamw->step(), step + 1);
    const std::vector<float> w = ReadTensor<float>(module->weight->value).value();
    const std::vector<float> b = ReadTensor<float>(module->bias->value).value();
    EXPECT_NEAR(w[0], want_weight[step], 1e-6) << step;
    EXPECT_NEAR(w[1], want_weight[step], 1e-6) << step;
    EXPECT_NEAR(b[0], want_bias[step], 1e-6) << step;
  }
  StateDict state;
  ASSERT_OK(adamw->AddToStateDict(state));
  EXPECT_EQ(state.GetInt("optim/step").value(), 3);
  ASSERT_EQ(state.tensors().count("optim/exp_avg/weight"), 1u);
  ASSERT_EQ(state.tensors().count("optim/exp_avg_sq/bias"), 1u);
  // m = 0.9 * -0.055 + 0.1 * 2 = 0.1505; v = 0.95 * 0.061875 + 0.05 * 4 = 0.25878125.
  EXPECT_NEAR(
      ReadTensor<float>(state.tensors().at("optim/exp_avg/weight").pieces[0].tensor).value()[0],
      0.1505, 1e-7);
  EXPECT_NEAR(
      ReadTensor<float>(state.tensors().at("optim/exp_avg_sq/bias").pieces[0].tensor).value()[0],
      0.25878125, 1e-7);

  auto fresh = TwoParameters::Create();
  ASSERT_OK_AND_ASSIGN(auto restored, AdamW::Create(fresh->Parameters()));
  ASSERT_OK(restored->RestoreStep(state));
  EXPECT_EQ(restored->step(), 3);
}

TEST(AdamW, RejectsBadOptionsAndParameters) {
  auto module = TwoParameters::Create();
  EXPECT_THAT(std::string(AdamW::Create(module->Parameters(), {.beta1 = 1.0}).status().message()),
              HasSubstr("beta1 1"));
  EXPECT_TRUE(absl::IsInvalidArgument(AdamW::Create(module->Parameters()).value()->Step(-1.0)));
}

// n values in [-2, 2) from `seed`.
std::vector<float> GradientValues(int64_t n, uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> values(n);
  for (float& v : values) v = uniform(engine);
  return values;
}

// A gradient scale (clipping's factor, applied as AdamW reads the gradients) gives the bits of
// the gradients scaled first (ClipGradientNorm's ScaleGradients) and a plain step, and leaves
// the gradients as they were.
TEST(AdamW, GradientScaleGivesTheBitsOfScaledGradients) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto folded, Gpt::Create({.config = tiny, .seed = 3}));
  ASSERT_OK_AND_ASSIGN(auto scaled, Gpt::Create({.config = tiny, .seed = 3}));
  std::vector<NamedParameter> a = folded->Parameters(), b = scaled->Parameters();
  ASSERT_EQ(a.size(), b.size());
  // Each gradient's values; `b`'s are set again before each scaling.
  const auto set_gradients = [](const std::vector<NamedParameter>& parameters) {
    for (size_t i = 0; i < parameters.size(); ++i) {
      const Tensor& grad = parameters[i].parameter->grad;
      Set(grad, GradientValues(grad.numel(), static_cast<uint32_t>(70 + i)));
    }
  };
  set_gradients(a);
  ASSERT_OK_AND_ASSIGN(auto opt_folded, AdamW::Create(a));
  ASSERT_OK_AND_ASSIGN(auto opt_scaled, AdamW::Create(b));
  const float factor = ClipFactor(/*norm=*/7.3, /*max_norm=*/1.0);
  EXPECT_EQ(factor, static_cast<float>(1.0 / 7.3));
  for (int step = 0; step < 2; ++step) {
    ASSERT_OK(opt_folded->Step(1e-2, factor));
    set_gradients(b);
    ASSERT_OK(ScaleGradients(b, factor));
    ASSERT_OK(opt_scaled->Step(1e-2));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(ReadTensor<float>(a[i].parameter->value).value(),
              ReadTensor<float>(b[i].parameter->value).value())
        << a[i].name;
    EXPECT_EQ(ReadTensor<float>(a[i].parameter->grad).value(),
              GradientValues(a[i].parameter->grad.numel(), static_cast<uint32_t>(70 + i)))
        << a[i].name << ": the gradient is left as it was";
  }
  EXPECT_TRUE(absl::IsInvalidArgument(opt_folded->Step(1e-2, -0.5f)));
  EXPECT_TRUE(absl::IsInvalidArgument(opt_folded->Step(1e-2, INFINITY)));
}

TEST(ClipFactor, IsMaxNormOverNormOnlyAboveMaxNorm) {
  EXPECT_EQ(ClipFactor(13.0, 6.5), 0.5f);
  EXPECT_EQ(ClipFactor(13.0, 100.0), 1.0f);
  EXPECT_EQ(ClipFactor(13.0, 0.0), 1.0f);  // No clipping.
  EXPECT_EQ(ClipFactor(INFINITY, 1.0), 0.0f);
}

TEST(ClipGradientNorm, ScalesEveryGradientByTheGlobalNorm) {
  auto module = TwoParameters::Create();
  Set(module->weight->grad, {3, 4});
  Set(module->bias->grad, {12});  // Global norm sqrt(9 + 16 + 144) = 13.
  ASSERT_OK_AND_ASSIGN(double norm, ClipGradientNorm(module->Parameters(), 0.0));
  EXPECT_NEAR(norm, 13.0, 1e-6);  // Measured only.
  EXPECT_EQ(ReadTensor<float>(module->bias->grad).value()[0], 12.0f);
  ASSERT_OK_AND_ASSIGN(norm, ClipGradientNorm(module->Parameters(), 6.5));
  EXPECT_NEAR(norm, 13.0, 1e-6);
  EXPECT_THAT(
      ReadTensor<float>(module->weight->grad).value(),
      ::testing::ElementsAre(::testing::FloatNear(1.5f, 1e-6f), ::testing::FloatNear(2.0f, 1e-6f)));
  EXPECT_NEAR(ReadTensor<float>(module->bias->grad).value()[0], 6.0f, 1e-6f);
  ASSERT_OK_AND_ASSIGN(norm, ClipGradientNorm(module->Parameters(), 100.0));  // Below: kept.
  EXPECT_NEAR(ReadTensor<float>(module->bias->grad).value()[0], 6.0f, 1e-6f);
}

// Gradients of two dtypes on one device (an f32 weight, a bf16 bias): the norm, the clip and
// ZeroGrad take each tensor as it is, as they do for a single dtype.
TEST(ClipGradientNorm, TakesGradientsOfSeveralDTypes) {
  auto module = TwoParameters::Create(DType::kBF16);
  Parameter* weight = module->weight;
  Parameter* bias = module->bias;
  Set(weight->grad, {3, 4});
  ASSERT_OK_AND_ASSIGN(Tensor twelve, MakeTensor(Device::Cpu(), {1}, std::vector<float>{12}));
  ASSERT_OK(Cast(twelve, bias->grad));  // Global norm 13, each value exact in bf16.
  ASSERT_OK_AND_ASSIGN(double norm, ClipGradientNorm(module->Parameters(), 6.5));
  EXPECT_NEAR(norm, 13.0, 1e-6);
  ASSERT_OK_AND_ASSIGN(Tensor halved, Tensor::Empty({1}, DType::kF32));
  ASSERT_OK(Cast(bias->grad, halved));
  EXPECT_EQ(ReadTensor<float>(halved).value()[0], 6.0f);
  EXPECT_THAT(
      ReadTensor<float>(weight->grad).value(),
      ::testing::ElementsAre(::testing::FloatNear(1.5f, 1e-6f), ::testing::FloatNear(2.0f, 1e-6f)));
  ASSERT_OK(module->ZeroGrad());
  ASSERT_OK(Cast(bias->grad, halved));
  EXPECT_EQ(ReadTensor<float>(halved).value()[0], 0.0f);
  EXPECT_THAT(ReadTensor<float>(weight->grad).value(), ::testing::ElementsAre(0.0f, 0.0f));
}

TEST(LrSchedule, WarmupThenCosineOrLinearDecay) {
  LrSchedule s{.max_lr = 1.0, .min_lr = 0.1, .warmup_steps = 10, .total_steps = 110};
  ASSERT_OK(s.Validate());
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(4), 0.5);
  EXPECT_DOUBLE_EQ(s.At(9), 1.0);
  EXPECT_DOUBLE_EQ(s.At(10), 1.0);
  EXPECT_NEAR(s.At(35), 0.1 + 0.45 * (1 + std::sqrt(0.5)), 1e-12);  // A quarter: cos(pi/4).
  EXPECT_NEAR(s.At(60), 0.55, 1e-12);
  EXPECT_NEAR(s.At(110), 0.1, 1e-12);
  EXPECT_NEAR(s.At(500), 0.1, 1e-12);
  s.decay = LrDecay::kLinear;
  EXPECT_NEAR(s.At(35), 1.0 - 0.9 * 0.25, 1e-12);
  EXPECT_NEAR(s.At(60), 0.55, 1e-12);
  EXPECT_NEAR(s.At(110), 0.1, 1e-12);
  EXPECT_THAT(std::string(LrSchedule{.max_lr = 0.5, .min_lr = 1.0}.Validate().message()),
              HasSubstr("min_lr <= max_lr"));
  const LrSchedule long_warmup{.warmup_steps = 5, .total_steps = 4};
  EXPECT_FALSE(long_warmup.Validate().ok());
}

// The whole loop on the tiny model: AdamW with clipping and a warmup-cosine schedule memorises
// one batch (the loss falls from ln(500) = 6.2 to below 0.05 in 100 steps).
TEST(AdamW, TinyGptOverfitsOneBatch) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 11}));
  std::vector<uint16_t> ids(4 * 17);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<uint16_t>((i * 37 + 55) % 500);
  ASSERT_OK_AND_ASSIGN(Tensor tokens, MakeTensor(Device::Cpu(), {4, 17}, ids));
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
  const LrSchedule schedule{.max_lr = 1e-2, .min_lr = 1e-3, .warmup_steps = 5, .total_steps = 100};
  double loss = 0;
  for (int step = 0; step < 100; ++step) {
    ASSERT_OK(model->ZeroGrad());
    ASSERT_OK_AND_ASSIGN(loss, model->Forward(tokens));
    ASSERT_OK(model->Backward());
    ASSERT_OK(ClipGradientNorm(model->Parameters(), 1.0).status());
    ASSERT_OK(adamw->Step(schedule.At(step)));
  }
  EXPECT_LT(loss, 0.05);
}

}  // namespace
}  // namespace usine
