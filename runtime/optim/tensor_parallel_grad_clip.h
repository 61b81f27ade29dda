// Global-norm gradient clipping (grad_clip.h) for a model split over a tensor-parallel group:
// the norm is that of the whole model's gradient, so a shard's sum of squares
// (Parameter::split sharded) is summed over the group while a replicated parameter (the same
// gradient on every rank) counts once. Every rank of the group gets the same norm and scales
// its gradients by the same factor, so replicas stay equal.
//
//   ASSIGN_OR_RETURN(double norm, ClipTensorParallelGradientNorm(model->Parameters(), 1.0,
//                                                                model->tp()));
#ifndef USINE_RUNTIME_OPTIM_TENSOR_PARALLEL_GRAD_CLIP_H_
#define USINE_RUNTIME_OPTIM_TENSOR_PARALLEL_GRAD_CLIP_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "collectives/communicator.h"
#include "runtime/nn/module.h"

namespace usine {

// Returns the whole model's gradient norm before clipping; max_norm <= 0 only measures. A
// collective over `tp` (one all-gather of a double); a null `tp` is ClipGradientNorm.
// Gradients: f32, bf16 or f16 (grad_clip.h).
[[nodiscard]] absl::StatusOr<double> ClipTensorParallelGradientNorm(
    absl::Span<const NamedParameter> parameters, double max_norm, Communicator* tp);

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_TENSOR_PARALLEL_GRAD_CLIP_H_
