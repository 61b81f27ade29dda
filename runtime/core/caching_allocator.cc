#include "runtime/core/caching_allocator.h"

#include <algorithm>
#include <bit>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"

namespace usine {

size_t CachingAllocator::SizeClass(size_t bytes) {
  constexpr size_t kSmallGranule = 512;
  constexpr size_t kSmallLimit = size_t{1} << 20;
  if (bytes <= kSmallLimit) {
    return std::max<size_t>(kSmallGranule,
                            (bytes + kSmallGranule - 1) / kSmallGranule * kSmallGranule);
  }
  const size_t granule = std::bit_floor(bytes) / 4;  // Waste below a quarter of `bytes`.
  return (bytes + granule - 1) / granule * granule;
}

CachingAllocator::CachingAllocator(Device device,
                                   std::unique_ptr<core_internal::DeviceMemoryBackend> backend)
    : device_(device), backend_(std::move(backend)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.empty()) {
    USINE_LOG(WARNING) << "caching allocator on " << device_ << " destroyed with " << live_.size()
                       << " live allocations; leaking them";
  }
  if (!pending_.empty()) backend_->SynchronizeDevice().IgnoreError();
  if (auto status = CollectPendingLocked(); !status.ok()) {
    USINE_LOG(WARNING) << status;
  }
  ReleaseFreeBlocksLocked().IgnoreError();
}

absl::StatusOr<void*> CachingAllocator::Allocate(size_t bytes, StreamHandle stream) {
  if (bytes == 0) return nullptr;
  if (bytes > SIZE_MAX / 2) {  // No memory holds it, and its size class would overflow.
    return absl::ResourceExhaustedError(
        absl::StrCat("allocating ", bytes, " bytes on ", device_.ToString(), ": impossible size"));
  }
  const size_t size = SizeClass(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CollectPendingLocked());

  Block block;
  if (auto it = free_.find({stream, size}); it != free_.end() && !it->second.empty()) {
    block = std::move(it->second.back());
    it->second.pop_back();
    ++stats_.cache_hits;
  } else {
    absl::StatusOr<void*> ptr = backend_->Malloc(size);
    if (absl::IsResourceExhausted(ptr.status())) {
      // Give the cache back and try once more.
      RETURN_IF_ERROR(backend_->SynchronizeDevice());
      RETURN_IF_ERROR(CollectPendingLocked());
      RETURN_IF_ERROR(ReleaseFreeBlocksLocked());
      ptr = backend_->Malloc(size);
    }
    if (!ptr.ok()) {
      return absl::Status(
          ptr.status().code(),
          absl::StrCat("allocating ", bytes, " bytes on ", device_.ToString(), " (",
                       stats_.allocated_bytes, " allocated, ", stats_.reserved_bytes,
                       " reserved): ", ptr.status().message()));
    }
    block.ptr = *ptr;
    block.size = size;
    block.stream = stream;
    stats_.reserved_bytes += size;
    ++stats_.device_allocations;
  }
  ++stats_.allocations;
  stats_.allocated_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  void* ptr = block.ptr;
  live_.emplace(ptr, std::move(block));
  return ptr;
}

void CachingAllocator::Deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    USINE_LOG(ERROR) << "caching allocator on " << device_ << ": Deallocate of unknown pointer "
                     << ptr;
    return;
  }
  Block block = std::move(it->second);
  live_.erase(it);
  stats_.allocated_bytes -= block.size;
  for (StreamHandle other : block.other_streams) {
    absl::StatusOr<core_internal::StreamMarker> marker = backend_->RecordMarker(other);
    if (!marker.ok()) {
      // Without a marker the block cannot be proven idle: wait for the whole device.
      USINE_LOG(WARNING) << marker.status() << "; synchronising " << device_;
      backend_->SynchronizeDevice().IgnoreError();
      continue;
    }
    block.pending.push_back(*marker);
  }
  block.other_streams.clear();
  if (block.pending.empty()) {
    free_[{block.stream, block.size}].push_back(std::move(block));
  } else {
    pending_.push_back(std::move(block));
  }
}

absl::Status CachingAllocator::RecordStream(void* ptr, StreamHandle stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "RecordStream: %p is not a live allocation on %s", ptr, device_.ToString()));
  }
  Block& block = it->second;
  if (stream != block.stream && std::find(block.other_streams.begin(), block.other_streams.end(),
                                          stream) == block.other_streams.end()) {
    block.other_streams.push_back(stream);
  }
  return absl::OkStatus();
}

absl::Status CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CollectPendingLocked());
  return ReleaseFreeBlocksLocked();
}

CachingAllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
}

absl::Status CachingAllocator::CollectPendingLocked() {
  for (size_t i = 0; i < pending_.size();) {
    Block& block = pending_[i];
    while (!block.pending.empty()) {
      ASSIGN_OR_RETURN(bool done, backend_->MarkerDone(block.pending.back()));
      if (!done) break;
      backend_->ReleaseMarker(block.pending.back());
      block.pending.pop_back();
    }
    if (block.pending.empty()) {
      free_[{block.stream, block.size}].push_back(std::move(block));
      pending_[i] = std::move(pending_.back());
      pending_.pop_back();
    } else {
      ++i;
    }
  }
  return absl::OkStatus();
}

absl::Status CachingAllocator::ReleaseFreeBlocksLocked() {
  for (auto& [key, blocks] : free_) {
    for (Block& block : blocks) {
      backend_->Free(block.ptr);
      stats_.reserved_bytes -= block.size;
    }
  }
  free_.clear();
  return absl::OkStatus();
}

}  // namespace usine
