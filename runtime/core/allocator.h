// Where tensor memory comes from. Each device has a default allocator:
//   cpu     -> HostAllocator(): aligned, pageable host memory;
//   cuda:N  -> the device's CachingAllocator (caching_allocator.h).
// PinnedHostAllocator() gives page-locked host memory for fast, asynchronous copies.
//
//   ASSIGN_OR_RETURN(Allocator* alloc, DefaultAllocator(Device::Cuda(0)));
//   ASSIGN_OR_RETURN(void* p, alloc->Allocate(bytes, stream.handle()));  // nullptr: host/default
//   ...
//   alloc->Deallocate(p);
//
// Allocators are safe for concurrent use by multiple threads. The allocators returned here
// live until the process exits.
#ifndef USINE_RUNTIME_CORE_ALLOCATOR_H_
#define USINE_RUNTIME_CORE_ALLOCATOR_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/device.h"
#include "runtime/core/stream.h"

namespace usine {

// Every allocation is aligned to at least this many bytes (a GPU cache line; covers AVX-512).
inline constexpr size_t kAllocationAlignment = 256;

class Allocator {
 public:
  virtual ~Allocator() = default;

  // Returns `bytes` bytes on device(), aligned to kAllocationAlignment; nullptr for 0 bytes.
  // `stream` is the CUDA stream where the memory will be used first: a caching allocator
  // hands out memory already ordered on it. Host allocators ignore it.
  // Out of memory is kResourceExhausted.
  [[nodiscard]] virtual absl::StatusOr<void*> Allocate(size_t bytes, StreamHandle stream) = 0;

  // REQUIRES: `ptr` came from this allocator's Allocate and was not deallocated since;
  // nullptr is ignored.
  virtual void Deallocate(void* ptr) = 0;

  virtual Device device() const = 0;
  virtual absl::string_view name() const = 0;
};

// Aligned, pageable host memory.
Allocator& HostAllocator();

// Page-locked host memory when a CUDA device is present (cudaHostAlloc), so device copies
// from and to it are asynchronous; plain aligned host memory otherwise (pins_memory() says).
class PinnedMemoryAllocator : public Allocator {
 public:
  virtual bool pins_memory() const = 0;
};
PinnedMemoryAllocator& PinnedHostAllocator();

// The default allocator of `device`; an error if the device is not available.
[[nodiscard]] absl::StatusOr<Allocator*> DefaultAllocator(Device device);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_ALLOCATOR_H_
