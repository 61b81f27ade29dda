// The default allocator of each device.
#include "runtime/core/allocator.h"

#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/caching_allocator.h"
#include "runtime/core/status_macros.h"

namespace usine {

absl::StatusOr<CachingAllocator*> CudaCachingAllocator(int index) {
  const Device device = Device::Cuda(index);
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
#if USINE_WITH_CUDA
  static std::mutex mu;
  // Never destroyed: memory may still be released by static destructors at exit.
  static auto* allocators = new std::vector<std::unique_ptr<CachingAllocator>>();
  std::lock_guard<std::mutex> lock(mu);
  if (allocators->empty()) allocators->resize(CudaDeviceCount());
  auto& slot = (*allocators)[index];
  if (slot == nullptr) {
    ASSIGN_OR_RETURN(auto backend, core_internal::MakeCudaMemoryBackend(device));
    slot = std::make_unique<CachingAllocator>(device, std::move(backend));
  }
  return slot.get();
#else
  return absl::FailedPreconditionError(absl::StrCat(device.ToString(), ": built without CUDA"));
#endif
}

absl::StatusOr<Allocator*> DefaultAllocator(Device device) {
  if (device.is_cpu()) return &HostAllocator();
  ASSIGN_OR_RETURN(CachingAllocator * allocator, CudaCachingAllocator(device.index()));
  return allocator;
}

}  // namespace usine
