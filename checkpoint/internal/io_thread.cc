#include "checkpoint/internal/io_thread.h"

#include <utility>

namespace usine::checkpoint_internal {

IoThread::IoThread() : thread_([this] { Loop(); }) {}

IoThread::~IoThread() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void IoThread::Submit(std::function<absl::Status()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

absl::Status IoThread::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](IoThread* t)
           ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) { return t->queue_.empty() && !t->running_; },
      this));
  return std::exchange(first_error_, absl::OkStatus());
}

bool IoThread::busy() const {
  absl::MutexLock lock(&mu_);
  return running_ || !queue_.empty();
}

absl::Status IoThread::Run(std::function<absl::Status()> task) {
  Submit(std::move(task));
  return Wait();
}

void IoThread::Loop() {
  for (;;) {
    std::function<absl::Status()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](IoThread* t)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) { return t->stop_ || !t->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // Stopped, and nothing left to run.
      task = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    const absl::Status status = task();
    absl::MutexLock lock(&mu_);
    running_ = false;
    if (!status.ok() && first_error_.ok()) first_error_ = status;
  }
}

}  // namespace usine::checkpoint_internal
