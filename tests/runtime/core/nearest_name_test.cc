#include "runtime/core/nearest_name.h"

#include <optional>

#include "gtest/gtest.h"

namespace usine {
namespace {

TEST(NearestName, SuggestsSlipsAndPrefixesOnly) {
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("abc", "abc"), 0u);
  EXPECT_EQ(NearestName("lrr", {"eps", "lr", "min_lr"}), "lr");
  EXPECT_EQ(NearestName("warmup", {"warmup_steps", "decay"}), "warmup_steps");
  EXPECT_EQ(NearestName("zzz", {"eps", "lr"}), std::nullopt);
  EXPECT_EQ(NearestName("", {"lr"}), std::nullopt);
}

}  // namespace
}  // namespace usine
