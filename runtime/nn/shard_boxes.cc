#include "runtime/nn/shard_boxes.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {
namespace {

// Appends the boxes of the elements [lo, hi) (flat, relative to `base`) of the sub-tensor of
// `shape` at index `prefix` (its first d = prefix.size() coordinates), whose first element is
// at flat index `base`: the whole rows of dimension d that the range covers as one box, and a
// partial first and last row by recursion into that row. `origin` is added to every offset,
// `shard_base` to every flat index.
void AppendFlatBoxes(const Shape& shape, std::vector<int64_t>& prefix, int64_t base, int64_t lo,
                     int64_t hi, const std::vector<int64_t>& origin, int64_t shard_base,
                     std::vector<ShardBox>& out) {
  if (lo >= hi) return;
  const int d = static_cast<int>(prefix.size());
  const int rank = shape.rank();
  auto emit = [&](int64_t first_row, int64_t rows) {
    ShardBox box;
    std::vector<int64_t> extent(static_cast<size_t>(rank), 1);
    box.offset = origin;
    for (int i = 0; i < d; ++i) box.offset[i] += prefix[i];
    if (d < rank) {
      box.offset[d] += first_row;
      extent[d] = rows;
      for (int i = d + 1; i < rank; ++i) extent[i] = shape.dim(i);
    }
    box.extent = Shape(extent);
    int64_t row_numel = 1;
    for (int i = d + 1; i < rank; ++i) row_numel *= shape.dim(i);
    box.shard_begin = shard_base + base + (d < rank ? first_row * row_numel : 0);
    out.push_back(std::move(box));
  };
  if (d == rank) {  // A scalar: its one element.
    emit(0, 1);
    return;
  }
  int64_t stride = 1;  // Elements of one row of dimension d.
  for (int i = d + 1; i < rank; ++i) stride *= shape.dim(i);
  if (lo % stride != 0) {
    const int64_t row = lo / stride;
    const int64_t row_end = std::min(hi, (row + 1) * stride);
    prefix.push_back(row);
    AppendFlatBoxes(shape, prefix, base + row * stride, lo - row * stride, row_end - row * stride,
                    origin, shard_base, out);
    prefix.pop_back();
    lo = row_end;
  }
  if (hi / stride > lo / stride) emit(lo / stride, hi / stride - lo / stride);
  lo = std::max(lo, hi / stride * stride);
  if (lo < hi) {
    const int64_t row = lo / stride;
    prefix.push_back(row);
    AppendFlatBoxes(shape, prefix, base + row * stride, 0, hi - row * stride, origin, shard_base,
                    out);
    prefix.pop_back();
  }
}

// A contiguous part of the shard that is a box of the logical tensor: the whole shard, or one
// outer index of one block's piece.
struct Chunk {
  Shape shape;                  // Of the shard's rank.
  std::vector<int64_t> origin;  // Its offset in the logical tensor.
  int64_t begin = 0;            // Its first element's flat index in the shard.
};

std::vector<Chunk> Chunks(const Shape& shard, const TensorParallelSplit& split) {
  const int rank = shard.rank();
  std::vector<int64_t> origin(static_cast<size_t>(rank), 0);
  if (!split.sharded() || split.groups == 1) {
    if (split.sharded()) origin[split.dim] = split.rank * shard.dim(split.dim);
    return {Chunk{shard, std::move(origin), 0}};
  }
  const int dim = split.dim;
  const int64_t piece = shard.dim(dim) / split.groups;
  int64_t outer = 1;
  for (int i = 0; i < dim; ++i) outer *= shard.dim(i);
  std::vector<int64_t> dims(static_cast<size_t>(rank), 1);
  dims[dim] = piece;
  int64_t numel = piece;
  for (int i = dim + 1; i < rank; ++i) numel *= (dims[i] = shard.dim(i));
  std::vector<Chunk> chunks;
  for (int64_t o = 0; o < outer; ++o) {
    for (int g = 0; g < split.groups; ++g) {
      int64_t rest = o;
      for (int i = dim - 1; i >= 0; --i) {
        origin[i] = rest % shard.dim(i);
        rest /= shard.dim(i);
      }
      origin[dim] = (static_cast<int64_t>(g) * split.size + split.rank) * piece;
      chunks.push_back(Chunk{Shape(dims), origin, (o * split.groups + g) * numel});
    }
  }
  return chunks;
}

}  // namespace

Shape LogicalShape(const Shape& shard, const TensorParallelSplit& split) {
  if (!split.sharded()) return shard;
  std::vector<int64_t> dims(shard.dims().begin(), shard.dims().end());
  dims[split.dim] *= split.size;
  return Shape(dims);
}

absl::StatusOr<std::vector<ShardBox>> ShardRangeBoxes(const Shape& shard,
                                                      const TensorParallelSplit& split,
                                                      int64_t begin, int64_t end) {
  if (begin < 0 || begin > end || end > shard.numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "elements [", begin, ", ", end, ") are not a range of a shard ", shard.ToString()));
  }
  if (split.sharded() &&
      (split.dim < 0 || split.dim >= shard.rank() || split.rank < 0 || split.rank >= split.size ||
       split.groups < 1 || shard.dim(split.dim) % split.groups != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard ", shard.ToString(), " cannot be rank ", split.rank, " of ", split.size,
                     " of a split along dimension ", split.dim, " in ", split.groups, " block(s)"));
  }
  std::vector<ShardBox> out;
  for (const Chunk& chunk : Chunks(shard, split)) {
    const int64_t chunk_end = chunk.begin + chunk.shape.numel();
    const int64_t lo = std::max(begin, chunk.begin), hi = std::min(end, chunk_end);
    if (lo >= hi) continue;
    std::vector<int64_t> prefix;
    AppendFlatBoxes(chunk.shape, prefix, 0, lo - chunk.begin, hi - chunk.begin, chunk.origin,
                    chunk.begin, out);
  }
  return out;
}

absl::Status AddShardPieces(StateDict& state, const std::string& name, const Tensor& shard,
                            const TensorParallelSplit& split) {
  const Shape logical = LogicalShape(shard.shape(), split);
  if (shard.numel() == 0) {
    return state.AddShard(name, shard, logical, std::vector<int64_t>(logical.rank(), 0));
  }
  ASSIGN_OR_RETURN(std::vector<ShardBox> boxes,
                   ShardRangeBoxes(shard.shape(), split, 0, shard.numel()));
  for (ShardBox& box : boxes) {
    ASSIGN_OR_RETURN(Tensor piece, shard.View(box.shard_begin, box.extent));
    RETURN_IF_ERROR(state.AddShard(name, std::move(piece), logical, std::move(box.offset)));
  }
  return absl::OkStatus();
}

}  // namespace usine
