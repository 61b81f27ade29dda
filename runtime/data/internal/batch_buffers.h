// The host buffers that DataStream's fill threads fill and its consumer takes: a fixed set
// handed over without locks (a mask of free buffers, and a ring of filled ones indexed by the
// batch's number, each slot marked ready when its batch is), so that a batch costs no system
// call when nobody waits. Batches may be filled out of order by several threads; Take()
// returns them in order. The consumer polls for a few microseconds before it sleeps on an
// atomic (futex); fillers, which wait for training to give a buffer back, sleep at once.
//
//   filler:    std::optional<int> b = buffers->AcquireFree(closing);  fill memory(*b);
//              buffers->Publish({*b, index, ...});   or, at the end, buffers->Stop(status);
//   consumer:  ASSIGN_OR_RETURN(FilledBuffer f, buffers->Take());  ...  buffers->Release(f.buffer);
//
// REQUIRES: batch numbers are handed out in order to fillers that hold a buffer (so that a
// ring slot is reused only after the consumer took its previous batch).
// Thread-safety: AcquireFree and Publish from any number of filler threads; Take from one
// consumer thread; Stop, Release and Wake from any thread. Held through a shared_ptr by batches
// that point into it, so that memory outlives the stream when a batch does.
#ifndef USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_
#define USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/stream.h"
#include "runtime/data/data_stream_state.h"

namespace usine::data_internal {

struct FilledBuffer {
  int buffer = 0;
  int64_t index = 0;             // the global batch's number
  int64_t incoming_samples = 0;  // DataStreamState::incoming_samples after it
  DataStreamState state;         // after it
};

class BatchBuffers {
 public:
  static constexpr int kMaxBuffers = 64;

  // `count` pinned host buffers of `bytes` each, all free; Take() starts at batch number
  // `first_batch`. REQUIRES: 0 < count <= kMaxBuffers.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<BatchBuffers>> Create(int count, size_t bytes,
                                                                            int64_t first_batch);
  BatchBuffers(const BatchBuffers&) = delete;
  BatchBuffers& operator=(const BatchBuffers&) = delete;
  ~BatchBuffers();

  void* memory(int buffer) const { return memory_[buffer]; }
  // The event recorded after a device copy out of the buffer, if any (the producer waits for
  // it before refilling). Owned by whichever side holds the buffer.
  std::optional<Event>& copied(int buffer) { return copied_[buffer]; }

  // Filler: a free buffer, waiting for one; nullopt once `closing` is set (see Wake).
  std::optional<int> AcquireFree(const std::atomic<bool>& closing);
  // Filler: hands a filled buffer to the consumer (batch number filled.index).
  void Publish(FilledBuffer filled);
  // Any thread: no more buffers; Take() returns `status` (the first one given) when the next
  // batch in order is not ready.
  void Stop(absl::Status status);

  // Consumer: the next filled buffer in batch order, waiting for it, or the Stop() status.
  [[nodiscard]] absl::StatusOr<FilledBuffer> Take();

  // Any thread: the buffer is free again.
  void Release(int buffer);
  // Any thread: wakes AcquireFree to look at its `closing` flag again.
  void Wake();

 private:
  BatchBuffers() = default;

  std::vector<void*> memory_;
  std::vector<std::optional<Event>> copied_;

  std::atomic<uint64_t> free_mask_{0};    // bit b: buffer b is free
  std::atomic<uint32_t> free_events_{0};  // bumped by Wake, and by Release when a filler sleeps
  std::atomic<int> fillers_sleeping_{0};  // fillers about to sleep, or asleep, on free_events_
  std::vector<FilledBuffer> ring_;        // batch i is ring_[i % size] once ready_ says so
  std::unique_ptr<std::atomic<int64_t>[]> ready_;  // ready_[i % size] == i + 1: batch i is
  std::atomic<uint32_t> filled_events_{0};  // bumped by Stop, and by Publish when Take sleeps
  std::atomic<bool> consumer_sleeping_{false};
  std::atomic<bool> stopped_{false};
  std::mutex stop_mu_;
  absl::Status stop_status_;  // guarded by stop_mu_: the first Stop()'s
  int64_t taken_ = 0;         // the consumer's: the number of the next batch to take
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_
