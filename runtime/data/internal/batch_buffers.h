// The host buffers that DataStream's prefetch thread fills and its consumer takes: a fixed set
// handed from one producer to one consumer without locks (a ring of filled buffers and a mask
// of free ones), so that a batch costs no system call when neither side waits. The consumer
// polls for a few microseconds before it sleeps on an atomic (futex); the producer, which
// waits for training to give a buffer back, sleeps at once.
//
//   producer:  std::optional<int> b = buffers->AcquireFree(closing);  fill memory(*b);
//              buffers->Publish({*b, ...});        or, at the end, buffers->Stop(status);
//   consumer:  ASSIGN_OR_RETURN(FilledBuffer f, buffers->Take());  ...  buffers->Release(f.buffer);
//
// Thread-safety: one producer thread (AcquireFree, Publish, Stop), one consumer thread
// (Take); Release and Wake from any thread. Held through a shared_ptr by batches that point
// into it, so that memory outlives the stream when a batch does.
#ifndef USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_
#define USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_

#include <atomic>
#include <cstdint>
#include <memory>
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

  // `count` pinned host buffers of `bytes` each, all free. REQUIRES: 0 < count <= kMaxBuffers.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<BatchBuffers>> Create(int count,
                                                                            size_t bytes);
  BatchBuffers(const BatchBuffers&) = delete;
  BatchBuffers& operator=(const BatchBuffers&) = delete;
  ~BatchBuffers();

  void* memory(int buffer) const { return memory_[buffer]; }
  // The event recorded after a device copy out of the buffer, if any (the producer waits for
  // it before refilling). Owned by whichever side holds the buffer.
  std::optional<Event>& copied(int buffer) { return copied_[buffer]; }

  // Producer: a free buffer, waiting for one; nullopt once `closing` is set (see Wake).
  std::optional<int> AcquireFree(const std::atomic<bool>& closing);
  // Producer: hands a filled buffer to the consumer.
  void Publish(FilledBuffer filled);
  // Producer: no more buffers; Take() returns `status` once the filled ones are taken.
  void Stop(absl::Status status);

  // Consumer: the next filled buffer, waiting for it, or the status given to Stop().
  [[nodiscard]] absl::StatusOr<FilledBuffer> Take();

  // Any thread: the buffer is free again.
  void Release(int buffer);
  // Any thread: wakes AcquireFree to look at its `closing` flag again.
  void Wake();

 private:
  BatchBuffers() = default;

  std::vector<void*> memory_;
  std::vector<std::optional<Event>> copied_;

  std::atomic<uint64_t> free_mask_{0};      // bit b: buffer b is free
  std::atomic<uint32_t> free_events_{0};    // bumped by Release and Wake; AcquireFree sleeps on it
  std::vector<FilledBuffer> ring_;          // filled buffer i is ring_[i % size]
  std::atomic<int64_t> published_{0};       // filled buffers published, ever
  std::atomic<uint32_t> filled_events_{0};  // bumped by Publish and Stop; Take sleeps on it
  std::atomic<bool> stopped_{false};
  absl::Status stop_status_;  // written before stopped_ is set
  int64_t taken_ = 0;         // the consumer's
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_BATCH_BUFFERS_H_
