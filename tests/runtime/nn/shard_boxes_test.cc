#include "runtime/nn/shard_boxes.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/nn/tensor_parallel.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

// "offset+extent@shard_begin" per box, for readable expectations.
std::string Describe(const std::vector<ShardBox>& boxes) {
  std::vector<std::string> parts;
  parts.reserve(boxes.size());
  for (const ShardBox& b : boxes) {
    parts.push_back(absl::StrCat("[", absl::StrJoin(b.offset, ","), "]+",
                                 absl::StrJoin(b.extent.dims(), "x"), "@", b.shard_begin));
  }
  return absl::StrJoin(parts, " ");
}

std::string Boxes(const Shape& shard, const TensorParallelSplit& split, int64_t begin,
                  int64_t end) {
  absl::StatusOr<std::vector<ShardBox>> boxes = ShardRangeBoxes(shard, split, begin, end);
  if (!boxes.ok()) return std::string(boxes.status().message());
  return Describe(*boxes);
}

constexpr TensorParallelSplit kWhole{};

TEST(ShardRangeBoxes, ARangeInsideOneRowIsOneBox) {
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 6, 9), "[1,1]+1x3@6");
}

TEST(ShardRangeBoxes, ARangeSpanningRowsIsAPartialFirstRowWholeRowsAndAPartialLastRow) {
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 3, 17), "[0,3]+1x2@3 [1,0]+2x5@5 [3,0]+1x2@15");
  // Across one row boundary only: no whole rows.
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 3, 7), "[0,3]+1x2@3 [1,0]+1x2@5");
  // Starting or ending on a row boundary.
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 5, 12), "[1,0]+1x5@5 [2,0]+1x2@10");
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 2, 10), "[0,2]+1x3@2 [1,0]+1x5@5");
}

TEST(ShardRangeBoxes, TheWholeTensorIsOneBox) {
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 0, 20), "[0,0]+4x5@0");
  EXPECT_EQ(Boxes(Shape{2, 3, 4}, kWhole, 0, 24), "[0,0,0]+2x3x4@0");
  EXPECT_EQ(Boxes(Shape{}, kWhole, 0, 1), "[]+@0");  // A scalar.
}

TEST(ShardRangeBoxes, AnEmptyRangeIsNoBoxes) {
  EXPECT_EQ(Boxes(Shape{4, 5}, kWhole, 7, 7), "");
  EXPECT_EQ(Boxes(Shape{0, 5}, kWhole, 0, 0), "");
}

TEST(ShardRangeBoxes, OneDimensionalRangesAreOneBox) {
  EXPECT_EQ(Boxes(Shape{13}, kWhole, 4, 11), "[4]+7@4");
}

TEST(ShardRangeBoxes, ThreeDimensionalRangesSplitRecursivelyByDimension) {
  // [2, 3, 4]: elements 5..21 are (0,1,1..3), (0,2,*), (1,0,*), (1,1,*), (1,2,0..1).
  EXPECT_EQ(Boxes(Shape{2, 3, 4}, kWhole, 5, 22),
            "[0,1,1]+1x1x3@5 [0,2,0]+1x1x4@8 [1,0,0]+1x2x4@12 [1,2,0]+1x1x2@20");
  // Within one matrix of the batch: rows only.
  EXPECT_EQ(Boxes(Shape{2, 3, 4}, kWhole, 12, 20), "[1,0,0]+1x2x4@12");
}

TEST(ShardRangeBoxes, AColumnSplitWithBlocksIsOneBoxPerBlockPiece) {
  // c_attn's weight [3C, C] with C = 4 at TP rank 1 of 2: the shard [6, 4] holds rows 2..3 of
  // q (logical rows 2..3), of k (6..7) and of v (10..11).
  const TensorParallelSplit qkv{.dim = 0, .groups = 3, .rank = 1, .size = 2};
  EXPECT_EQ(LogicalShape(Shape{6, 4}, qkv), Shape({12, 4}));
  EXPECT_EQ(Boxes(Shape{6, 4}, qkv, 0, 24), "[2,0]+2x4@0 [6,0]+2x4@8 [10,0]+2x4@16");
  // A range across the q|k boundary is split there too.
  EXPECT_EQ(Boxes(Shape{6, 4}, qkv, 5, 14), "[3,1]+1x3@5 [6,0]+1x4@8 [7,0]+1x2@12");
  // The bias [3C] of the same layer.
  EXPECT_EQ(Boxes(Shape{6}, qkv, 1, 5), "[3]+1@1 [6]+2@2 [10]+1@4");
}

TEST(ShardRangeBoxes, ARowSplitIsOneBoxOfTheColumnsOfThisRank) {
  // RowParallelLinear's weight [out, in] = [3, 8] at rank 2 of 4: columns 4..5 of every row.
  const TensorParallelSplit rows{.dim = 1, .groups = 1, .rank = 2, .size = 4};
  EXPECT_EQ(LogicalShape(Shape{3, 2}, rows), Shape({3, 8}));
  EXPECT_EQ(Boxes(Shape{3, 2}, rows, 0, 6), "[0,4]+3x2@0");
  EXPECT_EQ(Boxes(Shape{3, 2}, rows, 1, 6), "[0,5]+1x1@1 [1,4]+2x2@2");
}

TEST(ShardRangeBoxes, BlocksAlongALaterDimensionAreOnePiecePerOuterIndex) {
  // No layer splits so: [2, 3 blocks x 2 pieces x 1] at rank 0 of 2, shard [2, 3].
  const TensorParallelSplit split{.dim = 1, .groups = 3, .rank = 0, .size = 2};
  EXPECT_EQ(Boxes(Shape{2, 3}, split, 0, 6),
            "[0,0]+1x1@0 [0,2]+1x1@1 [0,4]+1x1@2 [1,0]+1x1@3 [1,2]+1x1@4 [1,4]+1x1@5");
}

TEST(ShardRangeBoxes, RejectsARangeOutsideTheShardAndAnImpossibleSplit) {
  EXPECT_THAT(Boxes(Shape{4, 5}, kWhole, 3, 21), HasSubstr("are not a range of a shard [4, 5]"));
  EXPECT_THAT(Boxes(Shape{4, 5}, kWhole, 4, 3), HasSubstr("are not a range"));
  EXPECT_THAT(Boxes(Shape{4, 5}, kWhole, -1, 3), HasSubstr("are not a range"));
  EXPECT_THAT(Boxes(Shape{4, 5}, {.dim = 0, .groups = 3, .rank = 0, .size = 2}, 0, 20),
              HasSubstr("cannot be rank 0 of 2 of a split along dimension 0 in 3 block(s)"));
  EXPECT_THAT(Boxes(Shape{4, 5}, {.dim = 2, .groups = 1, .rank = 0, .size = 2}, 0, 20),
              HasSubstr("cannot be"));
}

// Every range of every shard of several splits: the boxes' elements, read from the shard at
// shard_begin, are the logical tensor's elements at the boxes, and the boxes follow each other
// in the shard without a gap, covering exactly [begin, end). The shards come from CopyShard,
// which cuts them independently of ShardRangeBoxes.
TEST(ShardRangeBoxes, EveryRangeOfEveryShardMapsToTheLogicalElements) {
  struct Case {
    Shape full;
    int dim;
    int groups;
    int size;
  };
  const Case cases[] = {{Shape{12, 3}, 0, 3, 2},    {Shape{3, 8}, 1, 1, 4},
                        {Shape{2, 12, 2}, 1, 3, 2}, {Shape{8, 2, 3}, 0, 1, 2},
                        {Shape{24}, 0, 3, 4},       {Shape{5, 4}, 0, 1, 1}};
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(Tensor full, Tensor::Empty(c.full, DType::kI64));
    absl::Span<int64_t> values = full.host_span<int64_t>().value();
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i);
    for (int rank = 0; rank < c.size; ++rank) {
      const TensorParallelSplit split{
          .dim = c.dim, .groups = c.groups, .rank = rank, .size = c.size};
      const Shape shape = ShardShape(c.full, split);
      ASSERT_OK_AND_ASSIGN(Tensor shard, Tensor::Empty(shape, DType::kI64));
      ASSERT_OK(CopyShard(full, shard, split));
      EXPECT_EQ(LogicalShape(shape, split), c.full);
      const int64_t* s = shard.host_span<int64_t>().value().data();
      for (int64_t begin = 0; begin <= shape.numel(); ++begin) {
        for (int64_t end = begin; end <= shape.numel(); ++end) {
          const std::string where =
              absl::StrCat(c.full.ToString(), " dim ", c.dim, " groups ", c.groups, " rank ", rank,
                           "/", c.size, " [", begin, ", ", end, ")");
          ASSERT_OK_AND_ASSIGN(std::vector<ShardBox> boxes,
                               ShardRangeBoxes(shape, split, begin, end));
          int64_t next = begin;
          for (const ShardBox& box : boxes) {
            ASSERT_EQ(box.shard_begin, next) << where;
            ASSERT_GT(box.extent.numel(), 0) << where;
            for (int64_t i = 0; i < box.extent.numel(); ++i) {
              // Row-major index of element i of the box in the logical tensor.
              int64_t index = 0, rest = i, scale = 1;
              for (int d = c.full.rank() - 1; d >= 0; --d) {
                index += (box.offset[d] + rest % box.extent.dim(d)) * scale;
                rest /= box.extent.dim(d);
                scale *= c.full.dim(d);
              }
              ASSERT_EQ(s[box.shard_begin + i], index) << where << " box " << Describe({box});
            }
            next += box.extent.numel();
          }
          ASSERT_EQ(next, end) << where;
          if (c.groups == 1 || c.dim == 0) {
            // Contiguous pieces: at most 2 * rank - 1 boxes per block the range touches.
            EXPECT_LE(static_cast<int>(boxes.size()), c.groups * (2 * c.full.rank() - 1)) << where;
          }
        }
      }
    }
  }
}

TEST(AddShardPieces, AddsViewsOfTheShardAsBoxesOfTheLogicalTensor) {
  const TensorParallelSplit qkv{.dim = 0, .groups = 3, .rank = 0, .size = 2};
  ASSERT_OK_AND_ASSIGN(Tensor shard, Tensor::Empty({6, 4}, DType::kF32));
  StateDict state;
  ASSERT_OK(AddShardPieces(state, "w", shard, qkv));
  const TensorEntry& entry = state.tensors().at("w");
  EXPECT_EQ(entry.global_shape, Shape({12, 4}));
  ASSERT_EQ(entry.pieces.size(), 3u);
  const float* base = static_cast<const float*>(shard.raw_data());
  for (int64_t g = 0; g < 3; ++g) {
    EXPECT_EQ(entry.pieces[g].tensor.raw_data(), base + 8 * g) << "a view, not a copy";
    EXPECT_EQ(entry.pieces[g].tensor.shape(), Shape({2, 4}));
    EXPECT_TRUE(entry.pieces[g].offset == std::vector<int64_t>({4 * g, 0}));
  }
  // A whole tensor is one piece, itself.
  ASSERT_OK(AddShardPieces(state, "b", shard, kWhole));
  EXPECT_TRUE(state.tensors().at("b").whole());
  EXPECT_EQ(state.tensors().at("b").pieces[0].tensor.raw_data(), shard.raw_data());
}

}  // namespace
}  // namespace usine
