#include "runtime/data/internal/batch_buffers.h"

#include <chrono>
#include <thread>

#include "runtime/core/allocator.h"
#include "runtime/core/status_macros.h"

namespace usine::data_internal {
namespace {

// How long the consumer polls before it sleeps: about what a batch takes to fill when the
// stream, not training, is the bottleneck; a futex sleep and wake-up costs more. It yields
// while it polls, so that a producer sharing its core (more threads than cores) runs.
constexpr std::chrono::microseconds kPoll(50);

template <typename Ready>
void PollUntil(Ready ready) {
  const auto until = std::chrono::steady_clock::now() + kPoll;
  while (!ready() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

}  // namespace

absl::StatusOr<std::shared_ptr<BatchBuffers>> BatchBuffers::Create(int count, size_t bytes,
                                                                   int64_t first_batch) {
  std::shared_ptr<BatchBuffers> buffers(new BatchBuffers());
  for (int i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(void* memory, PinnedHostAllocator().Allocate(bytes, nullptr));
    buffers->memory_.push_back(memory);
  }
  buffers->copied_.resize(count);
  buffers->taken_ = first_batch;
  buffers->ring_.resize(count);
  buffers->ready_.reset(new std::atomic<int64_t>[count]);
  for (int i = 0; i < count; ++i) buffers->ready_[i] = 0;
  buffers->free_mask_ = count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
  return buffers;
}

BatchBuffers::~BatchBuffers() {
  for (void* memory : memory_) PinnedHostAllocator().Deallocate(memory);
}

std::optional<int> BatchBuffers::AcquireFree(const std::atomic<bool>& closing) {
  while (true) {
    const uint32_t events = free_events_.load(std::memory_order_acquire);
    if (closing.load()) return std::nullopt;
    const uint64_t mask = free_mask_.load(std::memory_order_acquire);
    if (mask != 0) {
      const uint64_t bit = mask & -mask;
      // Another filler may take the same buffer first: then look again.
      if ((free_mask_.fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0) {
        return __builtin_ctzll(bit);
      }
      continue;
    }
    // Announce the sleep, then look again: a Release that did not see the announcement
    // freed its buffer before this second look (both sides are sequentially consistent).
    fillers_sleeping_.fetch_add(1);
    if (free_mask_.load() == 0 && !closing.load()) {
      free_events_.wait(events, std::memory_order_acquire);
    }
    fillers_sleeping_.fetch_sub(1);
  }
}

void BatchBuffers::Publish(FilledBuffer filled) {
  const int64_t i = filled.index;
  ring_[i % ring_.size()] = std::move(filled);
  ready_[i % ring_.size()].store(i + 1);
  // Touch the consumer's wake-up word only when it sleeps: a shared cache line written on every
  // batch costs more than the batch at small sizes.
  if (consumer_sleeping_.load()) {
    filled_events_.fetch_add(1, std::memory_order_release);
    filled_events_.notify_one();
  }
}

void BatchBuffers::Stop(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_.load()) return;  // the first reason stands
    stop_status_ = std::move(status);
    stopped_.store(true, std::memory_order_release);
  }
  filled_events_.fetch_add(1, std::memory_order_release);
  filled_events_.notify_one();
}

absl::StatusOr<FilledBuffer> BatchBuffers::Take() {
  std::atomic<int64_t>& ready = ready_[taken_ % ring_.size()];
  PollUntil([&] {
    return ready.load(std::memory_order_relaxed) == taken_ + 1 ||
           stopped_.load(std::memory_order_relaxed);
  });
  while (true) {
    const uint32_t events = filled_events_.load(std::memory_order_acquire);
    if (ready.load(std::memory_order_acquire) == taken_ + 1) {
      FilledBuffer filled = std::move(ring_[taken_ % ring_.size()]);
      ++taken_;
      return filled;
    }
    if (stopped_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(stop_mu_);
      return stop_status_;
    }
    // As in AcquireFree: announce, look again, then sleep.
    consumer_sleeping_.store(true);
    if (ready.load() != taken_ + 1 && !stopped_.load()) {
      filled_events_.wait(events, std::memory_order_acquire);
    }
    consumer_sleeping_.store(false);
  }
}

void BatchBuffers::Release(int buffer) {
  free_mask_.fetch_or(uint64_t{1} << buffer);
  if (fillers_sleeping_.load() > 0) {
    free_events_.fetch_add(1, std::memory_order_release);
    free_events_.notify_all();
  }
}

void BatchBuffers::Wake() {
  free_events_.fetch_add(1, std::memory_order_release);
  free_events_.notify_all();
}

}  // namespace usine::data_internal
