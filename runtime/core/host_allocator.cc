// Host allocators: aligned pageable memory, and page-locked memory through CUDA.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

#include "runtime/core/allocator.h"
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

}  // namespace

Allocator& HostAllocator() {
  static auto* allocator = new AlignedHostAllocator();
  return *allocator;
}

PinnedMemoryAllocator& PinnedHostAllocator() {
  static auto* allocator = new CudaPinnedAllocator();
  return *allocator;
}

}  // namespace usine
