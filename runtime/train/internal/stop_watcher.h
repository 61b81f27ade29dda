// A thread that acts on a stop signal (runtime/core/stop_signal.h) as soon as it arrives,
// for what a step boundary would see too late: the Trainer closes a watch-mode DataStream
// that is waiting for new shards, so that its Next() returns and the run can checkpoint.
//
//   StopWatcher watcher([&] { stream->Close(); });   // Close() runs once, on the signal
//   ...                                               // the destructor stops the thread
//
// The thread reads StopSignal() every `poll` (a handler may not do the work itself: Close
// takes locks and joins threads). Thread-safety: construct and destroy from one thread;
// `on_stop` runs on the watcher's thread, at most once.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_STOP_WATCHER_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_STOP_WATCHER_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/time/time.h"

namespace usine::train_internal {

class StopWatcher {
 public:
  explicit StopWatcher(std::function<void()> on_stop, absl::Duration poll = absl::Milliseconds(50));
  // Stops the thread; waits for an `on_stop` that is running.
  ~StopWatcher();
  StopWatcher(const StopWatcher&) = delete;
  StopWatcher& operator=(const StopWatcher&) = delete;

 private:
  void Loop(std::function<void()> on_stop, absl::Duration poll);

  std::mutex mu_;
  std::condition_variable wake_;
  bool done_ = false;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_STOP_WATCHER_H_
