#include "runtime/nn/sampler.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/nn/token_draw.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// Vocabulary 40, block 8: continuations soon outgrow the block.
GptConfig Small() { return GptConfig{"small", 40, 8, 2, 2, 8}; }

class SampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(model_, Gpt::Create({.config = Small(), .seed = 3}));
  }

  // The argmax of the logits after the last block_size tokens of `tokens`, from Logits.
  int32_t GreedyNext(const std::vector<int32_t>& tokens) {
    const int64_t t = std::min<int64_t>(static_cast<int64_t>(tokens.size()), Small().block_size);
    Tensor inputs = Tensor::Empty({1, t}, DType::kI32).value();
    std::memcpy(inputs.raw_data(), tokens.data() + tokens.size() - t, t * sizeof(int32_t));
    const std::vector<float> logits = ReadTensor<float>(model_->Logits(inputs).value()).value();
    const float* last = logits.data() + (t - 1) * Small().vocab_size;
    return static_cast<int32_t>(std::max_element(last, last + Small().vocab_size) - last);
  }

  std::unique_ptr<Gpt> model_;
};

TEST_F(SampleTest, GreedyIsTheArgmaxOfLogitsStepByStep) {
  const std::vector<int32_t> prompt = {7, 1, 30};
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> drawn,
                       Sample(*model_, prompt, {.max_new_tokens = 12, .temperature = 0}));
  ASSERT_EQ(drawn.size(), 12u);  // 3 + 12 tokens: the last draws see a cropped context.
  std::vector<int32_t> tokens = prompt;
  for (size_t i = 0; i < drawn.size(); ++i) {
    EXPECT_EQ(drawn[i], GreedyNext(tokens)) << "token " << i;
    tokens.push_back(drawn[i]);
  }
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> top1,
                       Sample(*model_, prompt, {.max_new_tokens = 12, .top_k = 1, .seed = 5}));
  EXPECT_EQ(top1, drawn);
}

TEST_F(SampleTest, APromptLongerThanTheBlockIsCroppedToItsLastBlock) {
  std::vector<int32_t> prompt(21);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 13 + 5) % 40);
  const SampleOptions options{.max_new_tokens = 6, .temperature = 0.9, .seed = 17};
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> long_prompt, Sample(*model_, prompt, options));
  const std::vector<int32_t> last_block(prompt.end() - Small().block_size, prompt.end());
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> cropped, Sample(*model_, last_block, options));
  EXPECT_EQ(long_prompt, cropped);
  EXPECT_EQ(long_prompt.size(), 6u);
}

TEST_F(SampleTest, TheSeedDecidesTheTokensAndAStopTokenEndsThem) {
  const std::vector<int32_t> prompt = {4, 9};
  SampleOptions options{.max_new_tokens = 30, .temperature = 1.0, .seed = 8};
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> drawn, Sample(*model_, prompt, options));
  ASSERT_EQ(drawn.size(), 30u);
  EXPECT_EQ(*Sample(*model_, prompt, options), drawn);
  options.seed = 9;
  EXPECT_NE(*Sample(*model_, prompt, options), drawn);
  // The token whose first draw comes latest: with it as the stop token, the same draws up to
  // and including it.
  size_t stop_at = 0;
  for (size_t i = 0; i < drawn.size(); ++i) {
    if (std::find(drawn.begin(), drawn.begin() + i, drawn[i]) == drawn.begin() + i) stop_at = i;
  }
  ASSERT_GT(stop_at, 0u);
  options.seed = 8;
  options.stop_token = drawn[stop_at];
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> stopped, Sample(*model_, prompt, options));
  EXPECT_EQ(stopped, std::vector<int32_t>(drawn.begin(), drawn.begin() + stop_at + 1));
}

TEST_F(SampleTest, BadInputsAreErrorsAndNoTokensAreNone) {
  const auto message = [&](std::vector<int32_t> prompt, const SampleOptions& options) {
    absl::StatusOr<std::vector<int32_t>> drawn = Sample(*model_, prompt, options);
    EXPECT_TRUE(absl::IsInvalidArgument(drawn.status())) << drawn.status();
    return std::string(drawn.status().message());
  };
  EXPECT_THAT(message({}, {}), HasSubstr("the prompt is empty"));
  EXPECT_THAT(message({1, 40}, {}),
              HasSubstr("prompt token 1 is 40, outside the vocabulary [0, 40)"));
  EXPECT_THAT(message({-1}, {}), HasSubstr("prompt token 0 is -1"));
  EXPECT_THAT(message({1}, {.top_k = -1}), HasSubstr("top_k -1"));
  EXPECT_THAT(message({1}, {.temperature = -0.1}), HasSubstr("temperature -0.1"));
  EXPECT_THAT(message({1}, {.max_new_tokens = -3}), HasSubstr("max_new_tokens -3"));
  EXPECT_THAT(message({1}, {.stop_token = 40}), HasSubstr("stop_token 40"));
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> none,
                       Sample(*model_, std::vector<int32_t>{1}, {.max_new_tokens = 0}));
  EXPECT_TRUE(none.empty());
}

// The tokens Sample drew before it had a key/value cache: each from NextTokenLogits of the last
// block_size tokens, by DrawToken.
std::vector<int32_t> RecomputedSample(Gpt& model, std::vector<int32_t> tokens,
                                      const SampleOptions& options) {
  const size_t prompt = tokens.size();
  const int64_t block = model.config().block_size;
  std::mt19937_64 rng(options.seed);
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int64_t t = std::min<int64_t>(static_cast<int64_t>(tokens.size()), block);
    const std::vector<int32_t> context(tokens.end() - t, tokens.end());
    const Tensor inputs = MakeTensor(Device::Cpu(), {1, t}, context).value();
    const std::vector<float> logits =
        ReadTensor<float>(model.NextTokenLogits(inputs).value()).value();
    const std::vector<double> row(logits.begin(), logits.end());
    tokens.push_back(DrawToken(row, options.temperature, options.top_k, rng).value());
  }
  return std::vector<int32_t>(tokens.begin() + prompt, tokens.end());
}

TEST(SampleWithCache, DrawsTheTokensOfAFullRecomputeAtEveryStep) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));  // block 64
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 4}));
  const std::vector<int32_t> prompt = {17, 250, 3, 99, 401};
  // 70 draws: the first 60 from the cache, the last 10 past the block, recomputed.
  for (const SampleOptions& options :
       {SampleOptions{.max_new_tokens = 70, .temperature = 0},
        SampleOptions{.max_new_tokens = 70, .temperature = 0.9, .top_k = 40, .seed = 12}}) {
    ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> drawn, Sample(*model, prompt, options));
    EXPECT_EQ(drawn, RecomputedSample(*model, prompt, options))
        << "temperature " << options.temperature;
  }
}

// Several continuations at once draw what one at a time draws with seeds seed, seed + 1, ...:
// with the cache, past the block, greedy and top-k, with stop tokens that end some
// continuations early while the others go on.
TEST(SampleMany, DrawsWhatSampleDrawsForEachSeed) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));  // block 64
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 4}));
  const std::vector<int32_t> prompt = {17, 250, 3, 99, 401};
  SampleOptions sampled{.max_new_tokens = 70, .temperature = 0.9, .top_k = 40, .seed = 12};
  // A stop token that seed 13 draws early: that continuation ends there, the others not.
  ASSERT_OK_AND_ASSIGN(
      std::vector<int32_t> seed13,
      Sample(*model, prompt, {.max_new_tokens = 70, .temperature = 0.9, .top_k = 40, .seed = 13}));
  SampleOptions stopping = sampled;
  stopping.stop_token = seed13[3];
  for (const SampleOptions& options :
       {SampleOptions{.max_new_tokens = 70, .temperature = 0}, sampled, stopping}) {
    ASSERT_OK_AND_ASSIGN(const std::vector<std::vector<int32_t>> many,
                         SampleMany(*model, prompt, options, 4));
    ASSERT_EQ(many.size(), 4u);
    for (int64_t b = 0; b < 4; ++b) {
      SampleOptions one = options;
      one.seed = options.seed + static_cast<uint64_t>(b);
      ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> alone, Sample(*model, prompt, one));
      EXPECT_EQ(many[b], alone) << "continuation " << b << ", temperature " << options.temperature;
    }
  }
  ASSERT_OK_AND_ASSIGN(const std::vector<std::vector<int32_t>> stopped,
                       SampleMany(*model, prompt, stopping, 4));
  EXPECT_LE(stopped[1].size(), 4u);  // Seed 13 stopped early...
  EXPECT_EQ(stopped[1].back(), *stopping.stop_token);
  EXPECT_GT(std::max({stopped[0].size(), stopped[2].size(), stopped[3].size()}), 4u);  // ...alone.
  EXPECT_TRUE(absl::IsInvalidArgument(SampleMany(*model, prompt, sampled, 0).status()));
}

}  // namespace
}  // namespace usine
