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
  EXPECT_THAT(state.AddShard("x", piece, Shape{4, 3}, {3, 0}).message(),
              HasSubstr("is not inside [4, 3]"));
  EXPECT_THAT(state.AddShard("y", piece, Shape{6}, {0}).message(),
              HasSubstr("does not have the rank of [6]"));
  EXPECT_FALSE(state.AddTensor("z", Tensor()).ok());
  ASSERT_EQ(state.tensors().at("w").pieces.size(), 1u);
  EXPECT_TRUE(state.tensors().at("w").pieces[0].offset == std::vector<int64_t>({2, 0}));
  EXPECT_FALSE(state.tensors().at("w").whole());
  EXPECT_EQ(state.piece_bytes(), 24);
}

// q|k|v at tensor-parallel rank 1 of 2: one box per block, added under one name.
TEST(StateDict, ARankMayAddSeveralDisjointBoxesOfOneTensor) {
  StateDict state;
  ASSERT_OK_AND_ASSIGN(Tensor q, Tensor::Empty({2, 4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor k, Tensor::Empty({2, 4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor v, Tensor::Empty({2, 4}, DType::kF32));
  ASSERT_OK(state.AddShard("qkv", q, Shape{12, 4}, {2, 0}));
  ASSERT_OK(state.AddShard("qkv", k, Shape{12, 4}, {6, 0}));
  ASSERT_OK(state.AddShard("qkv", v, Shape{12, 4}, {10, 0}));
  const TensorEntry& entry = state.tensors().at("qkv");
  ASSERT_EQ(entry.pieces.size(), 3u);
  EXPECT_EQ(entry.pieces[1].tensor.raw_data(), k.raw_data());  // A handle, not a copy.
  EXPECT_TRUE(entry.pieces[2].offset == std::vector<int64_t>({10, 0}));
  EXPECT_EQ(entry.global_shape, Shape({12, 4}));
  EXPECT_EQ(entry.dtype, DType::kF32);
  EXPECT_FALSE(entry.whole());
  EXPECT_EQ(entry.nbytes(), 3 * 32);
  EXPECT_EQ(state.piece_bytes(), 3 * 32);
}

TEST(StateDict, AnotherBoxMustNotOverlapThisRanksBoxesOfTheTensor) {
  StateDict state;
  ASSERT_OK_AND_ASSIGN(Tensor piece, Tensor::Empty({2, 3}, DType::kF32));
  ASSERT_OK(state.AddShard("w", piece, Shape{6, 6}, {2, 1}));
  // The same box again, and boxes sharing one element (corner) with it.
  EXPECT_THAT(state.AddShard("w", piece, Shape{6, 6}, {2, 1}).message(),
              HasSubstr("overlaps the piece [2, 3] at offset [2, 1]"));
  EXPECT_FALSE(state.AddShard("w", piece, Shape{6, 6}, {3, 3}).ok());
  EXPECT_FALSE(state.AddShard("w", piece, Shape{6, 6}, {1, 0}).ok());
  // Touching boxes share no element.
  ASSERT_OK_AND_ASSIGN(Tensor narrow, Tensor::Empty({2, 2}, DType::kF32));
  EXPECT_OK(state.AddShard("w", narrow, Shape{6, 6}, {2, 4}));
  EXPECT_OK(state.AddShard("w", piece, Shape{6, 6}, {0, 1}));
  EXPECT_OK(state.AddShard("w", piece, Shape{6, 6}, {4, 0}));
  EXPECT_EQ(state.tensors().at("w").pieces.size(), 4u);
}

TEST(StateDict, AnotherBoxMustHaveTheTensorsGlobalShapeAndDType) {
  StateDict state;
  ASSERT_OK_AND_ASSIGN(Tensor f32, Tensor::Empty({2, 3}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({2, 3}, DType::kBF16));
  ASSERT_OK(state.AddShard("w", f32, Shape{6, 3}, {0, 0}));
  EXPECT_THAT(state.AddShard("w", f32, Shape{8, 3}, {2, 0}).message(),
              HasSubstr("is not a piece of the f32[6, 3] tensor added before"));
  EXPECT_THAT(state.AddShard("w", bf16, Shape{6, 3}, {2, 0}).message(),
              HasSubstr("is not a piece of the f32[6, 3] tensor added before"));
  EXPECT_EQ(state.tensors().at("w").pieces.size(), 1u);
}

TEST(StateDict, BoxesOverlapWhenTheyShareAnElement) {
  EXPECT_TRUE(BoxesOverlap({0, 0}, Shape{2, 2}, {1, 1}, Shape{2, 2}));
  EXPECT_FALSE(BoxesOverlap({0, 0}, Shape{2, 2}, {2, 0}, Shape{2, 2}));
  EXPECT_FALSE(BoxesOverlap({0, 0}, Shape{2, 2}, {0, 2}, Shape{1, 1}));
  EXPECT_FALSE(BoxesOverlap({0, 0}, Shape{2, 0}, {0, 0}, Shape{2, 2}));  // Empty.
  EXPECT_TRUE(BoxesOverlap({}, Shape{}, {}, Shape{}));                   // Scalars.
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
