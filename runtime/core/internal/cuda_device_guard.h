// Makes a CUDA device current for a scope and restores the previous one on exit.
// Only for translation units compiled with the CUDA toolkit.
#ifndef USINE_RUNTIME_CORE_INTERNAL_CUDA_DEVICE_GUARD_H_
#define USINE_RUNTIME_CORE_INTERNAL_CUDA_DEVICE_GUARD_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"

#include "runtime/core/cuda_status.h"
#include "runtime/core/device.h"

namespace usine::core_internal {

class CudaDeviceGuard {
 public:
  CudaDeviceGuard() = default;
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;
  ~CudaDeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }

  // REQUIRES: device.is_cuda(). Call once.
  [[nodiscard]] absl::Status Enter(Device device) {
    RETURN_IF_ERROR(CheckDeviceAvailable(device));
    int current = 0;
    RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaGetDevice(&current)));
    if (current != device.index()) {
      RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaSetDevice(device.index())));
      previous_ = current;
    }
    return absl::OkStatus();
  }

 private:
  int previous_ = -1;
};

}  // namespace usine::core_internal

#endif  // USINE_RUNTIME_CORE_INTERNAL_CUDA_DEVICE_GUARD_H_
