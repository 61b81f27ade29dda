// Host allocators: aligned pageable memory, and page-locked memory through CUDA.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

#include "runtime/core/allocator.h"
#include "runtime/core/caching_allocator.h"
#include "runtime/core/internal/device_memory_backend.h"
#include "runtime/core/status_macros.h"

#if USINE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "runtime/core/cuda_status.h"
#endif

namespace usine {
namespace {

absl::StatusOr<void*> AlignedAlloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (bytes > SIZE_MAX - kAllocationAlignment) {
    return absl::ResourceExhaustedError(absl::StrCat("host allocation of ", bytes, " bytes"));
  }
  const size_t rounded =
      (bytes + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
  void* ptr = std::aligned_alloc(kAllocationAlignment, rounded);
  if (ptr == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("host allocation of ", bytes, " bytes failed"));
  }
  return ptr;
}

class AlignedHostAllocator final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t bytes, StreamHandle) override {
    return AlignedAlloc(bytes);
  }
  void Deallocate(void* ptr) override { std::free(ptr); }
  Device device() const override { return Device::Cpu(); }
  absl::string_view name() const override { return "host"; }
};

class CudaPinnedAllocator final : public PinnedMemoryAllocator {
 public:
  absl::StatusOr<void*> Allocate(size_t bytes, StreamHandle) override {
#if USINE_WITH_CUDA
    if (pins_memory() && bytes > 0) {
      void* ptr = nullptr;
      RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable)));
      return ptr;
    }
#endif
    return AlignedAlloc(bytes);
  }
  void Deallocate(void* ptr) override {
    if (!pins_memory()) {
      std::free(ptr);
      return;
    }
#if USINE_WITH_CUDA
    if (ptr != nullptr) cudaFreeHost(ptr);
#endif
  }
  Device device() const override { return Device::Cpu(); }
  absl::string_view name() const override { return pins_memory() ? "pinned-host" : "host"; }
  bool pins_memory() const override { return CudaDeviceCount() > 0; }
};

// Host memory for CachingAllocator: aligned_alloc and free; the host "stream" is synchronous,
// so a freed block is reusable at once.
class HostMemoryBackend final : public core_internal::DeviceMemoryBackend {
 public:
  absl::StatusOr<void*> Malloc(size_t bytes) override { return AlignedAlloc(bytes); }
  void Free(void* ptr) override { std::free(ptr); }
  absl::StatusOr<core_internal::StreamMarker> RecordMarker(StreamHandle) override {
    return nullptr;
  }
  absl::StatusOr<bool> MarkerDone(core_internal::StreamMarker) override { return true; }
  void ReleaseMarker(core_internal::StreamMarker) override {}
  absl::Status SynchronizeDevice() override { return absl::OkStatus(); }
};

}  // namespace

// Freed host blocks are cached and handed out again (CachingAllocator's size classes): a
// training step allocates the same activations every step, and fresh pages from the kernel
// cost a page fault each (13% of a CPU training step before this). Under AddressSanitizer
// every block goes back to free(), so that a use after free is still caught.
Allocator& HostAllocator() {
#if defined(__SANITIZE_ADDRESS__)
  static auto* allocator = new AlignedHostAllocator();
#else
  static auto* allocator =
      new CachingAllocator(Device::Cpu(), std::make_unique<HostMemoryBackend>());
#endif
  return *allocator;
}

PinnedMemoryAllocator& PinnedHostAllocator() {
  static auto* allocator = new CudaPinnedAllocator();
  return *allocator;
}

}  // namespace usine
