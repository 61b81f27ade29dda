// Tensor parallelism (Megatron-LM's, Shoeybi et al. 2019): what every tensor-parallel layer
// shares. A TP group is a Communicator (ProcessGrid's kTensor axis); a null communicator, or
// one of size 1, is a group of one and means no split. Parameters are cut as a
// TensorParallelSplit (module.h) describes; initialisation draws the *full* tensor from the
// ParameterInitializer and keeps this rank's shard, so a model's weights, and the counters
// it consumes, are the same whatever the TP size.
//
//   ASSIGN_OR_RETURN(TensorParallelSplit split,
//                    MakeTensorParallelSplit(tp, {3 * C, C}, /*dim=*/0, /*groups=*/3, "c_attn"));
//   // ShardShape({3C, C}, split) is {3C / tp, C}: rows of q, then of k, then of v.
//   RETURN_IF_ERROR(InitNormalShard(init, weight, {3 * C, C}, split, 0.02));
//   RETURN_IF_ERROR(AllReduceOverTensorParallel(tp, partial, ReduceOp::kSum));
//
// Thread-compatible; collectives follow communicator.h (every rank of the group calls them
// in the same order; they synchronise).
#ifndef USINE_RUNTIME_NN_TENSOR_PARALLEL_H_
#define USINE_RUNTIME_NN_TENSOR_PARALLEL_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "collectives/communicator.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/module.h"

namespace usine {

// The number of ranks of `tp` (1 for a null communicator).
inline int TensorParallelSize(const Communicator* tp) { return tp == nullptr ? 1 : tp->size(); }
inline int TensorParallelRank(const Communicator* tp) { return tp == nullptr ? 0 : tp->rank(); }

// The split of a tensor of shape `full` along `dim` into `groups` blocks over the ranks of
// `tp`. InvalidArgument naming `what` unless groups * size divides full.dim(dim).
[[nodiscard]] absl::StatusOr<TensorParallelSplit> MakeTensorParallelSplit(const Communicator* tp,
                                                                          const Shape& full,
                                                                          int dim, int groups,
                                                                          absl::string_view what);

// The shape of one rank's shard of a tensor of shape `full`.
Shape ShardShape(const Shape& full, const TensorParallelSplit& split);

// shard <- split.rank's piece of `full` (any dtype; `full` on the cpu, `shard` on any device,
// written by a synchronous copy). REQUIRES (checked): shard has ShardShape(full.shape(),
// split) and full's dtype.
[[nodiscard]] absl::Status CopyShard(const Tensor& full, const Tensor& shard,
                                     const TensorParallelSplit& split);

// Draws a full tensor of shape `full` ~ normal(0, stddev) from `init` (the counters an
// unsplit layer would use) and writes this rank's piece into `shard`.
[[nodiscard]] absl::Status InitNormalShard(ParameterInitializer& init, const Tensor& shard,
                                           const Shape& full, const TensorParallelSplit& split,
                                           double stddev);

// In place, t <- op over the ranks of `tp` (nothing for a group of one). op is kSum or kMax.
// f32 goes through Communicator::AllReduce, a CUDA tensor on the layers' stream
// (nn_internal::LayerStream, where its producers were enqueued) and stream-ordered: it returns
// once enqueued, and the kernels enqueued after it read its result; f64, which the communicators
// do not reduce, is all-gathered and reduced here in rank order (the same result on every
// rank), for the layers' f64 reference tests (cpu). REQUIRES: t is f32 on the cpu or tp's
// device, or f64 on the cpu.
[[nodiscard]] absl::Status AllReduceOverTensorParallel(Communicator* tp, const Tensor& t,
                                                       ReduceOp op);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_TENSOR_PARALLEL_H_
