// A caching allocator for device memory: freed blocks are kept and handed out again
// instead of going back to cudaFree (which synchronises the device).
//
// Rules:
// - Sizes are rounded up to a size class: a multiple of 512 B below 1 MiB; above, a
//   multiple of a quarter of the largest power of two not above the size (so less than
//   25% is wasted).
//   A block is reused only for a request of the same size class.
// - A block belongs to the stream it was allocated for. Freed, it is reused at once for
//   that stream: the stream's order keeps the old and the new user apart.
// - If the block was also used on other streams (RecordStream), it is reused only after
//   each of those streams has passed the point where it was freed.
// - When the device is out of memory, cached blocks are released (after the device has
//   finished all work) and the allocation is tried once more.
//
//   ASSIGN_OR_RETURN(CachingAllocator* alloc, CudaCachingAllocator(0));
//   ASSIGN_OR_RETURN(void* p, alloc->Allocate(bytes, compute.handle()));
//   RETURN_IF_ERROR(alloc->RecordStream(p, comm.handle()));  // also used by comm
//   alloc->Deallocate(p);
//
// Thread-safe: all methods may be called concurrently.
#ifndef USINE_RUNTIME_CORE_CACHING_ALLOCATOR_H_
#define USINE_RUNTIME_CORE_CACHING_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/allocator.h"
#include "runtime/core/internal/device_memory_backend.h"

namespace usine {

struct CachingAllocatorStats {
  size_t allocated_bytes = 0;       // Handed out now (size classes, not requests).
  size_t reserved_bytes = 0;        // Obtained from the device and not yet released.
  size_t peak_allocated_bytes = 0;  // Highest allocated_bytes so far.
  int64_t allocations = 0;          // Allocate() calls that returned memory.
  int64_t cache_hits = 0;           // ... of which served from the cache.
  int64_t device_allocations = 0;   // Backend Malloc() calls that succeeded.
};

class CachingAllocator final : public Allocator {
 public:
  // The size class a request of `bytes` is served from.
  static size_t SizeClass(size_t bytes);

  CachingAllocator(Device device, std::unique_ptr<core_internal::DeviceMemoryBackend> backend);
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  absl::StatusOr<void*> Allocate(size_t bytes, StreamHandle stream) override;
  void Deallocate(void* ptr) override;
  Device device() const override { return device_; }
  absl::string_view name() const override { return "cuda-caching"; }

  // Records that the block holding `ptr` is used on `stream` as well as its own.
  // REQUIRES: `ptr` is a live allocation of this allocator.
  [[nodiscard]] absl::Status RecordStream(void* ptr, StreamHandle stream);

  // Releases every cached block that no stream still needs back to the device.
  [[nodiscard]] absl::Status EmptyCache();

  CachingAllocatorStats stats() const;
  // peak_allocated_bytes <- allocated_bytes: the peak of what follows (one pass of a model).
  void ResetPeak();

 private:
  struct Block {
    void* ptr = nullptr;
    size_t size = 0;  // Size class.
    StreamHandle stream = nullptr;
    std::vector<StreamHandle> other_streams;           // Set by RecordStream.
    std::vector<core_internal::StreamMarker> pending;  // Outstanding after Deallocate.
  };
  using PoolKey = std::pair<StreamHandle, size_t>;

  // Moves blocks whose markers have all completed into the free pools.
  absl::Status CollectPendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReleaseFreeBlocksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Device device_;
  const std::unique_ptr<core_internal::DeviceMemoryBackend> backend_;
  mutable std::mutex mu_;
  std::map<PoolKey, std::vector<Block>> free_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<void*, Block> live_ ABSL_GUARDED_BY(mu_);
  std::vector<Block> pending_ ABSL_GUARDED_BY(mu_);
  CachingAllocatorStats stats_ ABSL_GUARDED_BY(mu_);
};

// The caching allocator of CUDA device `index`, created at first use and kept for the
// life of the process. An error if the device is not available.
[[nodiscard]] absl::StatusOr<CachingAllocator*> CudaCachingAllocator(int index);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_CACHING_ALLOCATOR_H_
