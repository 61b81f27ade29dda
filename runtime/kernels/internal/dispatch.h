// Runs an operation on the cpu or CUDA path according to the execution contract of
// kernels.h: cpu work needs the host stream; CUDA work goes on the given CUDA stream of the
// tensors' device, or, given the host stream, on the device's default stream followed by a
// synchronisation.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_DISPATCH_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_DISPATCH_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/device.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

#if USINE_WITH_CUDA
#include "runtime/core/internal/cuda_device_guard.h"
#endif

namespace usine::kernels_internal {

// `cpu()` returns void or absl::Status; `cuda(StreamHandle)` returns absl::Status.
template <typename CpuFn, typename CudaFn>
absl::Status Dispatch(absl::string_view op, Device device, const Stream& stream, CpuFn&& cpu,
                      CudaFn&& cuda) {
  if (device.is_cpu()) {
    if (!stream.is_host()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": cpu tensors run on the host stream, not a stream of ",
                       stream.device().ToString()));
    }
    if constexpr (std::is_void_v<decltype(cpu())>) {
      cpu();
      return absl::OkStatus();
    } else {
      return cpu();
    }
  }
  if (!stream.is_host() && stream.device() != device) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": tensors on ", device.ToString(),
                                                   " cannot run on a stream of ",
                                                   stream.device().ToString()));
  }
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device));
  RETURN_IF_ERROR(WithContext(cuda(stream.handle()), op));
  if (stream.is_host()) return Stream::Default(device).Synchronize();
  return absl::OkStatus();
#else
  return absl::FailedPreconditionError(
      absl::StrCat(op, ": ", device.ToString(), " tensors need a build with CUDA"));
#endif
}

// OK when `t` is f32, bf16 or f16.
inline absl::Status CheckFloatingPoint(const Tensor& t, absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(t, what));
  if (IsFloatingPoint(t.dtype())) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected f32, bf16 or f16, got ", t.DebugString()));
}

}  // namespace usine::kernels_internal

#endif  // USINE_RUNTIME_KERNELS_INTERNAL_DISPATCH_H_
