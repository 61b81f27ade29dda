// A thread that runs closures one after another, in submission order: the worker behind a
// communicator's asynchronous calls. RunInline lets a synchronous call run in the caller's
// thread once everything submitted before it has finished, keeping the order without a
// thread hand-off.
//
// Submit and RunInline are called by one thread at a time (the communicator's issuing
// thread); WaitIdle and the destructor may be called from any thread.
#ifndef USINE_COLLECTIVES_INTERNAL_SERIAL_EXECUTOR_H_
#define USINE_COLLECTIVES_INTERNAL_SERIAL_EXECUTOR_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace usine::collectives_internal {

class SerialExecutor {
 public:
  SerialExecutor() = default;
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;
  // Finishes everything submitted, then stops the thread.
  ~SerialExecutor();

  // Queues `task` after those already submitted; starts the thread on first use.
  void Submit(std::function<void()> task);
  // Waits for everything submitted so far, then runs `task` in the calling thread.
  void RunInline(const std::function<void()>& task);
  // Blocks until everything submitted so far has run.
  void WaitIdle();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable work_cv_;  // Signalled on Submit and on stop.
  std::condition_variable idle_cv_;  // Signalled when the queue has drained.
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool running_task_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace usine::collectives_internal

#endif  // USINE_COLLECTIVES_INTERNAL_SERIAL_EXECUTOR_H_
