// DeviceMemoryBackend over the CUDA runtime. Compiled only with USINE_WITH_CUDA.
#include <vector>

#include <cuda_runtime_api.h>

#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/core/internal/device_memory_backend.h"
#include "runtime/core/status_macros.h"

namespace usine::core_internal {
namespace {

class CudaMemoryBackend final : public DeviceMemoryBackend {
 public:
  explicit CudaMemoryBackend(Device device) : device_(device) {}

  ~CudaMemoryBackend() override {
    for (cudaEvent_t event : idle_events_) cudaEventDestroy(event);
  }

  absl::StatusOr<void*> Malloc(size_t bytes) override {
    CudaDeviceGuard guard;
    RETURN_IF_ERROR(guard.Enter(device_));
    void* ptr = nullptr;
    RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaMalloc(&ptr, bytes)));
    return ptr;
  }

  void Free(void* ptr) override {
    CudaDeviceGuard guard;
    if (guard.Enter(device_).ok()) cudaFree(ptr);
  }

  absl::StatusOr<StreamMarker> RecordMarker(StreamHandle stream) override {
    CudaDeviceGuard guard;
    RETURN_IF_ERROR(guard.Enter(device_));
    cudaEvent_t event = nullptr;
    if (!idle_events_.empty()) {
      event = idle_events_.back();
      idle_events_.pop_back();
    } else {
      RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaEventCreateWithFlags(&event, cudaEventDisableTiming)));
    }
    if (absl::Status s = USINE_CUDA_STATUS(cudaEventRecord(event, stream)); !s.ok()) {
      idle_events_.push_back(event);
      return s;
    }
    return static_cast<StreamMarker>(event);
  }

  absl::StatusOr<bool> MarkerDone(StreamMarker marker) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(marker));
    if (err == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    RETURN_IF_ERROR(USINE_CUDA_STATUS(err));
    return true;
  }

  void ReleaseMarker(StreamMarker marker) override {
    idle_events_.push_back(static_cast<cudaEvent_t>(marker));
  }

  absl::Status SynchronizeDevice() override {
    CudaDeviceGuard guard;
    RETURN_IF_ERROR(guard.Enter(device_));
    return USINE_CUDA_STATUS(cudaDeviceSynchronize());
  }

 private:
  const Device device_;
  std::vector<cudaEvent_t> idle_events_;  // Recycled markers.
};

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceMemoryBackend>> MakeCudaMemoryBackend(Device device) {
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
  return std::make_unique<CudaMemoryBackend>(device);
}

}  // namespace usine::core_internal
