// The device primitives that CachingAllocator builds on: raw allocation and stream
// markers. Production uses the CUDA runtime (MakeCudaMemoryBackend); the allocator's tests
// script one so that its reuse rules are checked on machines without a GPU.
#ifndef USINE_RUNTIME_CORE_INTERNAL_DEVICE_MEMORY_BACKEND_H_
#define USINE_RUNTIME_CORE_INTERNAL_DEVICE_MEMORY_BACKEND_H_

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/device.h"
#include "runtime/core/stream.h"

namespace usine::core_internal {

// An opaque point in a stream's work (a cudaEvent_t for CUDA).
using StreamMarker = void*;

// Called with the allocator's lock held; need not be thread-safe itself.
class DeviceMemoryBackend {
 public:
  virtual ~DeviceMemoryBackend() = default;
  // Out of memory must be kResourceExhausted.
  virtual absl::StatusOr<void*> Malloc(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  // A marker that completes once all work enqueued on `stream` so far has finished.
  virtual absl::StatusOr<StreamMarker> RecordMarker(StreamHandle stream) = 0;
  // Non-blocking.
  virtual absl::StatusOr<bool> MarkerDone(StreamMarker marker) = 0;
  virtual void ReleaseMarker(StreamMarker marker) = 0;
  // Blocks until all work on the device has finished.
  virtual absl::Status SynchronizeDevice() = 0;
};

// The CUDA runtime backend for `device`. REQUIRES: a CUDA build and device available.
absl::StatusOr<std::unique_ptr<DeviceMemoryBackend>> MakeCudaMemoryBackend(Device device);

}  // namespace usine::core_internal

#endif  // USINE_RUNTIME_CORE_INTERNAL_DEVICE_MEMORY_BACKEND_H_
