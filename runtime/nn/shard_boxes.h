// Where the elements of a rank's tensor-parallel shard lie in the logical (full) tensor, as
// boxes for checkpoints (checkpoint/state_dict.h). A shard split as TensorParallelSplit
// (module.h) says is, in memory, one piece of each of `groups` blocks, concatenated along
// `dim`; a flat range of it (ZeroAdamW's share of the flattened parameters) is a few boxes of
// each block's piece: a partial first row, whole rows, a partial last row, recursively by
// dimension. Every box is contiguous in the shard, so it is a view of the shard's memory.
//
//   // c_attn.weight at TP rank 1 of 2: shard [3C/2, C], three boxes (q, k, v rows).
//   ASSIGN_OR_RETURN(std::vector<ShardBox> boxes,
//                    ShardRangeBoxes(shard.shape(), split, 0, shard.numel()));
//   ASSIGN_OR_RETURN(Tensor q, shard.View(boxes[0].shard_begin, boxes[0].extent));
//   RETURN_IF_ERROR(AddShardPieces(state, "model/h.0.attn.c_attn.weight", shard, split));
//
// Pure functions; thread-safe.
#ifndef USINE_RUNTIME_NN_SHARD_BOXES_H_
#define USINE_RUNTIME_NN_SHARD_BOXES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "checkpoint/state_dict.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

// A box of the logical tensor whose elements are consecutive in the shard.
struct ShardBox {
  std::vector<int64_t> offset;  // Where the box starts in the logical tensor.
  Shape extent;                 // Of the logical tensor's rank.
  int64_t shard_begin = 0;      // Flat (row-major) index in the shard of the box's first element.
};

// The logical shape of a tensor whose shard, split as `split`, has shape `shard`.
// REQUIRES: 0 <= split.dim < shard.rank() unless split is whole.
Shape LogicalShape(const Shape& shard, const TensorParallelSplit& split);

// The elements [begin, end) of a shard of shape `shard` (row-major), as boxes of the logical
// tensor, in the shard's order, each contiguous in the shard; together they are exactly those
// elements. A range inside one block's piece gives at most 2 * rank - 1 boxes; a whole piece is
// one box. When dim > 0 and groups > 1 (no layer splits so; the pieces are then strided in
// the shard) every outer index of every block is a piece of its own. Empty range: no boxes.
// InvalidArgument unless 0 <= begin <= end <= shard.numel(), and, for a split shard,
// 0 <= split.dim < shard.rank(), 0 <= split.rank < split.size and groups divides
// shard.dim(split.dim).
[[nodiscard]] absl::StatusOr<std::vector<ShardBox>> ShardRangeBoxes(
    const Shape& shard, const TensorParallelSplit& split, int64_t begin, int64_t end);

// Adds `shard` (a rank's shard split as `split`: a parameter's value, or an optimizer moment of
// its shape) to `state` as the pieces of the logical tensor `name`: views of `shard`, one per
// box of ShardRangeBoxes(shard.shape(), split, 0, shard.numel()), so a load fills `shard` in
// place. An empty shard is added as one empty box.
[[nodiscard]] absl::Status AddShardPieces(StateDict& state, const std::string& name,
                                          const Tensor& shard, const TensorParallelSplit& split);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SHARD_BOXES_H_
