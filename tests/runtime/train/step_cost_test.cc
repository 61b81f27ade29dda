// A GPT step's work op by op (step_cost.h): the FLOPs add up to the MFU's count with attention
// over the causal pairs only, the bytes of GPT-2 124M's largest ops are the hand computation,
// the precision changes only what it should, and the names are the ones a profiled step marks.
#include "runtime/train/step_cost.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/op_timeline.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/train/flops.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

std::map<std::string, OpCost> ByName(const std::vector<OpCost>& ops) {
  std::map<std::string, OpCost> by_name;
  for (const OpCost& op : ops) {
    EXPECT_TRUE(by_name.emplace(op.name, op).second) << "twice: " << op.name;
  }
  return by_name;
}

// MFU's count (flops.h) with attention's 12 L C T per token, the whole T x T square, replaced
// by the pairs the causal mask keeps: 6 L C (T + 1).
double CausalFlops(const GptConfig& config, const StepShape& shape) {
  const auto layers_width = static_cast<double>(config.n_layer * config.n_embd);
  const auto t = static_cast<double>(shape.seq);
  return static_cast<double>(shape.batch) * t *
         (TrainingFlopsPerToken(config, shape.seq) - 12 * layers_width * t +
          6 * layers_width * (t + 1));
}

TEST(GptStepCost, FlopsAreMfusWithAttentionOverTheCausalPairs) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  for (const StepShape shape : {StepShape{16, 1024, 2}, StepShape{3, 77, 4}}) {
    EXPECT_DOUBLE_EQ(TotalCost(GptStepCost(gpt2, shape)).flops, CausalFlops(gpt2, shape));
  }
  const GptConfig odd{"odd", 1000, 64, 3, 6, 48};  // Not a preset: no remembered numbers.
  EXPECT_DOUBLE_EQ(TotalCost(GptStepCost(odd, {5, 33, 2})).flops, CausalFlops(odd, {5, 33, 2}));
}

TEST(GptStepCost, Gpt2BytesAreTheHandComputation) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  // n = 16 x 1024 = 16,384 tokens, C = 768, V = 50,304: n C = 12,582,912; V C = 38,633,472;
  // n V = 824,180,736. Parameters with wpe: 123,689,472 + 1024 x 768 = 124,475,904.
  const std::map<std::string, OpCost> bf16 = ByName(GptStepCost(gpt2, {16, 1024, 2}));
  // Reads the hidden states and the table, writes the logits, 2 bytes each.
  EXPECT_EQ(bf16.at("lm_head forward").bytes, 2.0 * (12582912.0 + 38633472.0 + 824180736.0));
  EXPECT_EQ(bf16.at("cross_entropy forward and backward").bytes, 2.0 * 2.0 * 824180736.0);
  // Seven f32 passes over the parameters and one bf16 copy of them.
  EXPECT_EQ(bf16.at("adamw").bytes, (7.0 * 4.0 + 2.0) * 124475904.0);
  EXPECT_EQ(bf16.at("zero_grad").bytes, 4.0 * 124475904.0);
  // 12 layers of q, k, v read and the output written: 12 x 4 n C x 2 bytes.
  EXPECT_EQ(bf16.at("attn.core forward").bytes, 12.0 * 4.0 * 12582912.0 * 2.0);
  // 16 sequences of 1024 x 1025 / 2 causal pairs, 4 C FLOPs each, in 12 layers.
  EXPECT_EQ(bf16.at("attn.core forward").flops, 12.0 * 16.0 * (1024.0 * 1025.0 / 2) * 4 * 768);
  // The residual sums are made by the c_proj products: the heads' output and the weight read in
  // bf16, the stream read and the sum written in f32.
  EXPECT_EQ(bf16.count("residual forward"), 0u);
  EXPECT_EQ(bf16.at("attn.c_proj forward").bytes,
            12.0 * (2.0 * (12582912.0 + 589824.0) + 2.0 * 4.0 * 12582912.0));
  // The whole step, added up op by op by hand from the rules in step_cost.h: 920,125,440 bytes
  // a layer forward and 1,354,235,904 backward, 12,325,051,392 outside the layers.
  EXPECT_EQ(TotalCost(GptStepCost(gpt2, {16, 1024, 2})).bytes, 39617387520.0);
}

TEST(GptStepCost, ActivationBytesChangeOnlyWhatIsNotF32) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  const std::map<std::string, OpCost> f32 = ByName(GptStepCost(gpt2, {4, 256, 4}));
  const std::map<std::string, OpCost> bf16 = ByName(GptStepCost(gpt2, {4, 256, 2}));
  ASSERT_EQ(f32.size(), bf16.size());
  for (const auto& [name, op] : f32) {
    EXPECT_EQ(op.flops, bf16.at(name).flops) << name;
    if (name == "zero_grad" || name == "embed forward" || name == "embed backward" ||
        name == "clip") {
      EXPECT_EQ(op.bytes, bf16.at(name).bytes) << name << ": all f32";
    } else if (name == "adamw") {
      EXPECT_GT(bf16.at(name).bytes, op.bytes) << name << ": writes a bf16 copy";
    } else {
      EXPECT_LT(bf16.at(name).bytes, op.bytes) << name;
    }
  }
}

class GptStepCostTest : public testing::DeviceTest {};

// A small model's step, timed op by op as `usine bench train --profile` times it (on CUDA in
// bf16 with the flash kernel, the goal's configuration): every op it marks has a cost, and
// every cost is an op it marks. CUDA's step also copies the token ids to the host, a transfer
// that has no floor in the device's memory.
TEST_P(GptStepCostTest, NamesAreTheOpsAProfiledStepMarks) {
  const GptConfig config{"names", 500, 64, 2, 2, 32};  // Heads of 16, the flash kernel's least.
  testing::ScopedMatmulPrecision precision(device().is_cuda() ? MatmulPrecision::kBf16
                                                              : MatmulPrecision::kF32);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gpt> model,
                       Gpt::Create({.config = config,
                                    .seed = 3,
                                    .device = device(),
                                    .attention = device().is_cuda() ? AttentionKernel::kFlash
                                                                    : AttentionKernel::kUnfused}));
  ASSERT_OK_AND_ASSIGN(auto optimizer, AdamW::Create(model->Parameters()));
  std::vector<int32_t> ids(2 * 9);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i * 37 % 500);
  ASSERT_OK_AND_ASSIGN(Tensor tokens, testing::MakeTensor(device(), {2, 9}, ids));

  ASSERT_OK(OpTimeline::Start(device()));
  ASSERT_OK(model->ZeroGrad());
  ASSERT_OK(model->Forward(tokens).status());
  ASSERT_OK(model->Backward());
  ASSERT_OK_AND_ASSIGN(const double norm, ClipGradientNorm(model->Parameters(), 0));
  ASSERT_OK(optimizer->Step(1e-3, ClipFactor(norm, 1.0)));
  ASSERT_OK_AND_ASSIGN(const std::vector<OpTime> timeline, OpTimeline::Stop());

  std::set<std::string> marked;
  for (const OpTime& op : timeline) {
    if (op.name != kUnmarkedOp) marked.insert(op.name);
  }
  std::set<std::string> costed;
  for (const OpCost& op : GptStepCost(config, {2, 8, 4})) costed.insert(op.name);
  if (device().is_cuda()) costed.insert("tokens to host");
  EXPECT_EQ(marked, costed);
}

USINE_INSTANTIATE_DEVICE_TESTS(GptStepCostTest);

}  // namespace
}  // namespace usine
