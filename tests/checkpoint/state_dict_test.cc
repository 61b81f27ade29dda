#include "checkpoint/state_dict.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

TEST(StateDict, NamesAreComponentsOfSafeCharacters) {
  EXPECT_OK(ValidateEntryName("blocks/0/attn.w_qkv-1"));
  for (const char* bad : {"", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a\\b", "\xc3\xa9"}) {
    EXPECT_FALSE(ValidateEntryName(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateEntryName(std::string(256, 'a')).ok());
}

TEST(StateDict, ShardsMustLieInsideTheirGlobalShape) {
  StateDict state;
  ASSERT_OK_AND_ASSIGN(Tensor piece, Tensor::Empty({2, 3}, DType::kF32));
  EXPECT_OK(state.AddShard("w", piece, Shape{4, 3}, {2, 0}));
  EXPECT_THAT(state.AddShard("w", piece, Shape{4, 3}, {0, 0}).message(), HasSubstr("added twice"));
  EXPECT_THAT(state.AddShard("x", piece, Shape{4, 3}, {3, 0}).message(),
              HasSubstr("is not inside [4, 3]"));
  EXPECT_THAT(state.AddShard("y", piece, Shape{6}, {0}).message(),
              HasSubstr("does not have the rank of [6]"));
  EXPECT_FALSE(state.AddTensor("z", Tensor()).ok());
  EXPECT_TRUE(state.tensors().at("w").offset == std::vector<int64_t>({2, 0}));
  EXPECT_FALSE(state.tensors().at("w").whole());
  EXPECT_EQ(state.piece_bytes(), 24);
}

TEST(StateDict, MetadataGettersCheckTheKind) {
  StateDict state;
  state.SetInt("step", 7);
  state.SetDouble("lr", 0.5);
  state.SetString("name", "gpt");
  state.SetJson("config", "{}");
  state.SetBytes("rng", std::string("\0\1", 2));
  EXPECT_EQ(*state.GetInt("step"), 7);
  EXPECT_EQ(*state.GetDouble("lr"), 0.5);
  EXPECT_EQ(*state.GetString("name"), "gpt");
  EXPECT_EQ(*state.GetJson("config"), "{}");
  EXPECT_EQ(*state.GetBytes("rng"), std::string("\0\1", 2));
  EXPECT_TRUE(absl::IsNotFound(state.GetInt("missing").status()));
  EXPECT_THAT(state.GetInt("lr").status().message(),
              HasSubstr("metadata 'lr' is double, not int64"));
  EXPECT_THAT(state.GetString("config").status().message(), HasSubstr("is json, not string"));
}

}  // namespace
}  // namespace usine
