#include "runtime/kernels/upload.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

#include "runtime/core/allocator.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

#if USINE_WITH_CUDA
#include "runtime/core/internal/cuda_device_guard.h"
#endif

namespace usine {
namespace {

constexpr size_t kMinSlotBytes = size_t{64} << 10;

struct Slot {
  void* memory = nullptr;  // Page-locked (PinnedHostAllocator), `capacity` bytes.
  size_t capacity = 0;
  std::optional<Event> copied;  // Recorded after the last copy from `memory`.
};

// The staging ring of one CUDA device.
class UploadRing {
 public:
  explicit UploadRing(Device device) : device_(device) {}

  absl::Status Upload(const Tensor& src, const Tensor& dst, const Stream& stream) {
    absl::MutexLock lock(&mu_);
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kUploadSlots;
    if (!slot.copied.has_value()) {
      ASSIGN_OR_RETURN(Event event, Event::Create(device_));
      slot.copied = std::move(event);
    }
    RETURN_IF_ERROR(AwaitLastCopy(slot));
    RETURN_IF_ERROR(Reserve(slot, src.nbytes()));
    std::memcpy(slot.memory, src.raw_data(), src.nbytes());
    ASSIGN_OR_RETURN(const Tensor staged,
                     Tensor::Wrap(slot.memory, src.shape(), src.dtype(), Device::Cpu()));
    RETURN_IF_ERROR(Copy(staged, dst, stream));
    absl::Status recorded = slot.copied->Record(stream);
    if (!recorded.ok()) {
      // Without its event the slot cannot tell when the copy is done: wait for it here.
      stream.Synchronize().IgnoreError();
    }
    return recorded;
  }

 private:
  // Waits (only if it has not finished) for the copy that last read the slot (none: an event
  // never recorded is complete).
  static absl::Status AwaitLastCopy(const Slot& slot) {
    ASSIGN_OR_RETURN(const bool done, slot.copied->IsComplete());
    return done ? absl::OkStatus() : slot.copied->Synchronize();
  }

  // Gives the slot at least `bytes`. The old buffer is retired, not freed: cudaFreeHost would
  // synchronise the device. REQUIRES: no copy still reads the slot.
  absl::Status Reserve(Slot& slot, size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (slot.capacity >= bytes) return absl::OkStatus();
#if USINE_WITH_CUDA
    // cudaHostAlloc acts on the current device: make it this ring's.
    core_internal::CudaDeviceGuard guard;
    RETURN_IF_ERROR(guard.Enter(device_));
#endif
    const size_t capacity = std::max(kMinSlotBytes, std::bit_ceil(bytes));
    ASSIGN_OR_RETURN(void* memory, PinnedHostAllocator().Allocate(capacity, nullptr));
    if (slot.memory != nullptr) retired_.push_back(slot.memory);
    slot.memory = memory;
    slot.capacity = capacity;
    return absl::OkStatus();
  }

  const Device device_;
  absl::Mutex mu_;
  std::array<Slot, kUploadSlots> slots_ ABSL_GUARDED_BY(mu_);
  int next_ ABSL_GUARDED_BY(mu_) = 0;
  // Outgrown slots' buffers, kept for the life of the process.
  std::vector<void*> retired_ ABSL_GUARDED_BY(mu_);
};

// The ring of `device`, created at first use and kept for the life of the process (its
// page-locked memory is not freed at exit, when CUDA may already be gone).
UploadRing& RingOf(Device device) {
  static std::mutex mu;
  static auto* rings = new std::map<int, std::unique_ptr<UploadRing>>();
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<UploadRing>& ring = (*rings)[device.index()];
  if (ring == nullptr) ring = std::make_unique<UploadRing>(device);
  return *ring;
}

}  // namespace

absl::Status Upload(const Tensor& src, const Tensor& dst, const Stream& stream) {
  RETURN_IF_ERROR(CheckSameDType(src, dst, "Upload src", "dst"));
  RETURN_IF_ERROR(CheckSameShape(src, dst, "Upload src", "dst"));
  if (!src.device().is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Upload src: expected a cpu tensor, got ", src.DebugString()));
  }
  if (!stream.is_host() && stream.device() != dst.device()) {
    return absl::InvalidArgumentError(absl::StrCat("Upload: dst on ", dst.device().ToString(),
                                                   " cannot be written on a stream of ",
                                                   stream.device().ToString()));
  }
  // Nothing to stage: a host copy, a synchronous one (the host stream), an empty or a large one.
  if (dst.device().is_cpu() || stream.is_host() || src.nbytes() == 0 ||
      src.nbytes() > kMaxStagedUploadBytes) {
    return Copy(src, dst, stream);
  }
  return RingOf(dst.device()).Upload(src, dst, stream);
}

}  // namespace usine
