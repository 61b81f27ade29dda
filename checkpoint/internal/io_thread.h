// The one thread that makes every HDF5 call of a Checkpointer (HDF5 1.10 as Debian builds it
// is not thread-safe), running tasks one at a time in the order they were submitted.
//
//   IoThread io;
//   io.Submit([&] { return WriteCheckpointFile(...); });   // returns at once
//   RETURN_IF_ERROR(io.Wait());                            // status of the tasks since the last
//   Wait RETURN_IF_ERROR(io.Run([&] { return ReadCheckpointFile(...); }));   // Submit + Wait
//
// Thread-safety: Submit, Wait and Run may be called from any thread; the destructor waits
// for the queued tasks to finish.
#ifndef USINE_CHECKPOINT_INTERNAL_IO_THREAD_H_
#define USINE_CHECKPOINT_INTERNAL_IO_THREAD_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace usine::checkpoint_internal {

class IoThread {
 public:
  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  void Submit(std::function<absl::Status()> task);
  // Blocks until every submitted task has run; returns the first error among the tasks that
  // ran since the previous Wait (and forgets it), or OK.
  [[nodiscard]] absl::Status Wait();
  // True while a submitted task has not finished.
  bool busy() const;
  [[nodiscard]] absl::Status Run(std::function<absl::Status()> task);

 private:
  void Loop();

  mutable absl::Mutex mu_;
  std::deque<std::function<absl::Status()>> queue_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // A task is being run.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_IO_THREAD_H_
