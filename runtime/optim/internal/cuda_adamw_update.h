// The AdamW update of CUDA tensors at the level of Tensors, shared by AdamW (adamw.h) and
// ZeroAdamW (zero_adamw.h): up to cuda_adamw.h's kAdamWTensorsPerLaunch arrays a launch, on the
// device's default stream (where the layers and the clip run), returning without waiting.
// Bit for bit the cpu's AdamWUpdate (adamw_update.h). This header needs no CUDA toolkit; in a
// build without CUDA the call is FailedPrecondition.
//
//   std::vector<AdamWArrays> arrays = {{.value = w, .grad = dw, .exp_avg = m, .exp_avg_sq = v,
//                                       .decay = true}};
//   RETURN_IF_ERROR(CudaAdamWUpdate(AdamWCoefficientsAt(options, lr, t), arrays, device));
#ifndef USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_UPDATE_H_
#define USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_UPDATE_H_

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "runtime/core/device.h"
#include "runtime/core/tensor.h"
#include "runtime/optim/internal/adamw_update.h"

namespace usine::optim_internal {

// One parameter's (or a piece's) four arrays: f32 tensors (views allowed) of one element count
// on the update's device. value, exp_avg and exp_avg_sq are updated in place.
struct AdamWArrays {
  Tensor value;
  Tensor grad;
  Tensor exp_avg;
  Tensor exp_avg_sq;
  bool decay = false;  // Weight decay applies (weights: yes; biases, norms: no).
};

// Enqueues the updates of `arrays` on `device`'s default stream. REQUIRES: the tensors are as
// above (the callers check them).
[[nodiscard]] absl::Status CudaAdamWUpdate(const AdamWCoefficients& c,
                                           absl::Span<const AdamWArrays> arrays, Device device);

}  // namespace usine::optim_internal

#endif  // USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_UPDATE_H_
