#include "runtime/nn/token_draw.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

// Eight logits with the argmax at id 5 and a tie between ids 2 and 6.
const std::vector<double> kLogits = {0.5, -1.0, 1.25, 0.0, -0.25, 2.0, 1.25, -3.0};

// Draws `n` tokens; returns how often each id came.
std::vector<int> Counts(const std::vector<double>& logits, double temperature, int64_t top_k, int n,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<int32_t> id = DrawToken(logits, temperature, top_k, rng);
    EXPECT_OK(id.status());
    if (id.ok()) ++counts[*id];
  }
  return counts;
}

std::vector<int32_t> Draws(double temperature, int64_t top_k, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(DrawToken(kLogits, temperature, top_k, rng).value());
  return ids;
}

TEST(DrawToken, GreedyAndTopOneGiveTheArgmax) {
  std::mt19937_64 rng(1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    rng.seed(seed);
    EXPECT_EQ(*DrawToken(kLogits, 0.0, 0, rng), 5);
    EXPECT_EQ(*DrawToken(kLogits, 1.0, 1, rng), 5);
    EXPECT_EQ(*DrawToken(kLogits, 100.0, 1, rng), 5);
  }
  // Equal maxima: the lowest id.
  EXPECT_EQ(*DrawToken(std::vector<double>{1.0, 3.0, 3.0}, 0.0, 0, rng), 1);
  // Greedy takes no variate from the engine.
  std::mt19937_64 used(9), fresh(9);
  ASSERT_OK(DrawToken(kLogits, 0.0, 0, used).status());
  EXPECT_EQ(used(), fresh());
}

TEST(DrawToken, NeverLeavesTheTopK) {
  // Temperature 50 makes every id nearly as likely: outside the top k they would come often.
  const std::vector<int> top3 = Counts(kLogits, 50.0, 3, 20000, 4);
  // Top 3: 5 (2.0) and the tie 2, 6 (1.25).
  for (int id : {0, 1, 3, 4, 7}) EXPECT_EQ(top3[id], 0) << "id " << id;
  for (int id : {2, 5, 6}) EXPECT_GT(top3[id], 5000) << "id " << id;
  // A tie at the k-th place goes to the lower id: top 2 is {5, 2}.
  const std::vector<int> top2 = Counts(kLogits, 50.0, 2, 20000, 4);
  EXPECT_EQ(top2[6], 0);
  EXPECT_GT(top2[2], 8000);
  EXPECT_GT(top2[5], 8000);
  // top_k at or above the vocabulary: every id.
  const std::vector<int> all = Counts(kLogits, 50.0, 8, 20000, 4);
  for (int id = 0; id < 8; ++id) EXPECT_GT(all[id], 1500) << "id " << id;
}

// The frequencies of n draws against softmax(logits / T) over the top k, each within 5
// standard deviations of a binomial count (a false failure: about 1 in 10^6 per id and seed;
// the seed is fixed, so the test is deterministic).
void ExpectSoftmaxFrequencies(double temperature, int64_t top_k) {
  constexpr int kDraws = 200000;
  const std::vector<int> counts = Counts(kLogits, temperature, top_k, kDraws, 2024);
  std::vector<int> order = {5, 2, 6, 0, 3, 4, 1, 7};  // By logit, ties to the lower id.
  const size_t k = top_k == 0 ? order.size() : static_cast<size_t>(top_k);
  double z = 0;
  for (size_t i = 0; i < k; ++i) z += std::exp(kLogits[order[i]] / temperature);
  for (size_t i = 0; i < order.size(); ++i) {
    const int id = order[i];
    const double p = i < k ? std::exp(kLogits[id] / temperature) / z : 0.0;
    const double sigma = std::sqrt(kDraws * p * (1 - p));
    EXPECT_NEAR(counts[id], kDraws * p, 5 * sigma + 0.5)
        << "id " << id << ", temperature " << temperature << ", top_k " << top_k;
  }
}

TEST(DrawToken, FrequenciesFollowTheTemperedSoftmaxOfTheTopK) {
  ExpectSoftmaxFrequencies(1.0, 0);
  ExpectSoftmaxFrequencies(0.7, 4);
  ExpectSoftmaxFrequencies(2.5, 6);
}

TEST(DrawToken, TheSeedDecidesTheDraws) {
  EXPECT_EQ(Draws(1.0, 0, 64, 11), Draws(1.0, 0, 64, 11));
  EXPECT_EQ(Draws(0.8, 5, 64, 11), Draws(0.8, 5, 64, 11));
  EXPECT_NE(Draws(1.0, 0, 64, 11), Draws(1.0, 0, 64, 12));
}

TEST(DrawToken, BadInputsAreErrors) {
  std::mt19937_64 rng(0);
  const auto message = [&](const std::vector<double>& logits, double temperature, int64_t top_k) {
    absl::StatusOr<int32_t> id = DrawToken(logits, temperature, top_k, rng);
    EXPECT_TRUE(absl::IsInvalidArgument(id.status())) << id.status();
    return std::string(id.status().message());
  };
  EXPECT_THAT(message({}, 1.0, 0), HasSubstr("no logits"));
  EXPECT_THAT(message(kLogits, -0.5, 0), HasSubstr("temperature -0.5"));
  EXPECT_THAT(message(kLogits, std::numeric_limits<double>::infinity(), 0),
              HasSubstr("temperature inf"));
  EXPECT_THAT(message(kLogits, 1.0, -2), HasSubstr("top_k -2"));
  EXPECT_THAT(message({0.0, std::nan(""), 1.0}, 1.0, 0), HasSubstr("the logit of id 1 is nan"));
}

}  // namespace
}  // namespace usine
