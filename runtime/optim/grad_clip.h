// Global-norm gradient clipping: the L2 norm over every gradient together, and when it
// exceeds max_norm every gradient scaled by max_norm / norm (the direction is kept).
//
//   ASSIGN_OR_RETURN(double norm, ClipGradientNorm(model->Parameters(), /*max_norm=*/1.0));
//
// Or, sparing the pass over the gradients, the norm alone and the factor left to AdamW, which
// reads the gradients times it (the same bits as scaled gradients; adamw.h):
//
//   ASSIGN_OR_RETURN(double norm, ClipGradientNorm(model->Parameters(), /*max_norm=*/0));
//   RETURN_IF_ERROR(optimizer->Step(lr, ClipFactor(norm, /*max_norm=*/1.0)));
#ifndef USINE_RUNTIME_OPTIM_GRAD_CLIP_H_
#define USINE_RUNTIME_OPTIM_GRAD_CLIP_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "runtime/nn/module.h"

namespace usine {

// What clipping to max_norm multiplies the gradients by: max_norm / norm, rounded to f32, when
// max_norm > 0 and norm > max_norm (0 for an infinite norm); otherwise 1.
float ClipFactor(double norm, double max_norm);

// Returns the norm before clipping. max_norm <= 0 (or infinite) only measures. Gradients are
// f32, bf16 or f16 on any device (kernels' L2Norm and Scale). Returns once the norm is on the
// host (one synchronisation when every gradient is on one CUDA device); the scaling of CUDA
// gradients is enqueued on their device's default stream, where the layers and AdamW run.
[[nodiscard]] absl::StatusOr<double> ClipGradientNorm(absl::Span<const NamedParameter> parameters,
                                                      double max_norm);

// The two halves of ClipGradientNorm, for clipping that sums norms differently
// (tensor_parallel_grad_clip.h). Each parameter's gradient L2 norm, in order, on the host: one
// L2Norms call and one synchronisation when every gradient is on one device.
[[nodiscard]] absl::StatusOr<std::vector<float>> GradientNormsToHost(
    absl::Span<const NamedParameter> parameters);
// Every gradient times `factor`, enqueued on its device's default stream (one call when every
// gradient is on one device).
[[nodiscard]] absl::Status ScaleGradients(absl::Span<const NamedParameter> parameters,
                                          float factor);

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_GRAD_CLIP_H_
