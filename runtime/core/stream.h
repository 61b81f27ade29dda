// Ordered queues of device work (Stream) and markers in them (Event), over CUDA streams and
// events. The host has a Stream too, so that one API serves both machines: work "on" the
// host stream runs in the calling thread before the call returns, and host events complete
// when recorded (they still time, from the host clock).
//
//   ASSIGN_OR_RETURN(Stream comm, Stream::Create(Device::Cuda(0)));
//   ASSIGN_OR_RETURN(Event grads_ready, Event::Create(Device::Cuda(0)));
//   RETURN_IF_ERROR(grads_ready.Record(compute));
//   RETURN_IF_ERROR(comm.WaitFor(grads_ready));  // comm's later work waits for compute's.
//
// Stream and Event are move-only owners (Stream::Default borrows CUDA's default stream).
// A Stream may be used from several threads; CUDA orders the work they enqueue. An Event is
// not safe to Record from two threads at once.
#ifndef USINE_RUNTIME_CORE_STREAM_H_
#define USINE_RUNTIME_CORE_STREAM_H_

#include <chrono>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/device.h"

// CUDA's own handle types (cudaStream_t is CUstream_st*), declared so that this header does
// not need the CUDA toolkit.
struct CUstream_st;
struct CUevent_st;

namespace usine {

using StreamHandle = CUstream_st*;
using EventHandle = CUevent_st*;

class Event;

class Stream {
 public:
  // The host stream: work runs synchronously in the calling thread.
  static Stream Host();
  // The stream where `device`'s work goes unless told otherwise: CUDA's legacy default stream of
  // a CUDA device (not owned), Host() for the cpu.
  static Stream Default(Device device);
  // A non-owning handle to an existing stream of `device` (nullptr: its default stream).
  static Stream Borrow(Device device, StreamHandle handle);
  // A new non-blocking stream on `device` (Host() for the cpu).
  [[nodiscard]] static absl::StatusOr<Stream> Create(Device device);

  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  Device device() const { return device_; }
  bool is_host() const { return device_.is_cpu(); }
  // The cudaStream_t; nullptr for the host stream and for CUDA's default stream.
  StreamHandle handle() const { return handle_; }

  // Blocks until all work enqueued so far has finished.
  [[nodiscard]] absl::Status Synchronize() const;
  // Makes work enqueued on this stream after the call wait for `event` (recorded on any
  // stream of the same device, or on the host). Does not block the caller.
  [[nodiscard]] absl::Status WaitFor(const Event& event) const;

 private:
  Stream(Device device, StreamHandle handle, bool owned)
      : device_(device), handle_(handle), owned_(owned) {}
  Device device_;
  StreamHandle handle_;
  bool owned_;
};

class Event {
 public:
  // An event on `device`; with `enable_timing` it can measure elapsed time.
  [[nodiscard]] static absl::StatusOr<Event> Create(Device device, bool enable_timing = false);

  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

  Device device() const { return device_; }
  EventHandle handle() const { return handle_; }

  // Captures the work enqueued on `stream` so far. REQUIRES: stream.device() == device().
  [[nodiscard]] absl::Status Record(const Stream& stream);
  // True once the captured work has finished (true for an event never recorded).
  [[nodiscard]] absl::StatusOr<bool> IsComplete() const;
  // Blocks until the captured work has finished.
  [[nodiscard]] absl::Status Synchronize() const;
  // Milliseconds from `start` to this event; both recorded, with timing, on one device.
  [[nodiscard]] absl::StatusOr<float> ElapsedMillisecondsSince(const Event& start) const;

 private:
  Event(Device device, EventHandle handle, bool timing)
      : device_(device), handle_(handle), timing_(timing) {}
  Device device_;
  EventHandle handle_;
  bool timing_;
  std::chrono::steady_clock::time_point host_time_{};  // When a host event was recorded.
};

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_STREAM_H_
