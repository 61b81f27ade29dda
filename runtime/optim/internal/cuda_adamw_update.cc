#include "runtime/optim/internal/cuda_adamw_update.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#if USINE_WITH_CUDA
#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/optim/internal/cuda_adamw.h"
#endif

namespace usine::optim_internal {

absl::Status CudaAdamWUpdate(const AdamWCoefficients& c, absl::Span<const AdamWArrays> arrays,
                             Device device) {
#if USINE_WITH_CUDA
  const cuda::AdamWStep step{.lr = c.lr,
                             .beta1 = c.beta1,
                             .beta2 = c.beta2,
                             .eps = c.eps,
                             .decay = c.lr * c.weight_decay,
                             .correction1 = c.correction1,
                             .correction2 = c.correction2,
                             .grad_scale = c.grad_scale};
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device));
  cuda::AdamWTensors launch;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const AdamWArrays& a = arrays[i];
    launch.tensors[launch.count++] = {.grad = static_cast<const float*>(a.grad.raw_data()),
                                      .value = static_cast<float*>(a.value.raw_data()),
                                      .exp_avg = static_cast<float*>(a.exp_avg.raw_data()),
                                      .exp_avg_sq = static_cast<float*>(a.exp_avg_sq.raw_data()),
                                      .n = a.value.numel(),
                                      .decay = a.decay};
    if (launch.count == cuda::kAdamWTensorsPerLaunch || i + 1 == arrays.size()) {
      RETURN_IF_ERROR(USINE_CUDA_STATUS(cuda::LaunchAdamW(step, launch, /*stream=*/nullptr)));
      launch = {};  // No stale entries past count (unused entries are null).
    }
  }
  return absl::OkStatus();
#else
  (void)c;
  (void)arrays;
  return absl::FailedPreconditionError(
      absl::StrCat("AdamW: parameters on ", device.ToString(), " need a build of usine with CUDA"));
#endif
}

}  // namespace usine::optim_internal
