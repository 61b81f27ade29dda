#include "runtime/train/internal/stop_watcher.h"

#include <utility>

#include "runtime/core/stop_signal.h"

namespace usine::train_internal {

StopWatcher::StopWatcher(std::function<void()> on_stop, absl::Duration poll)
    : thread_([this, on_stop = std::move(on_stop), poll]() mutable {
        Loop(std::move(on_stop), poll);
      }) {}

StopWatcher::~StopWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StopWatcher::Loop(std::function<void()> on_stop, absl::Duration poll) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    if (StopSignal() != 0) {
      lock.unlock();
      on_stop();
      return;
    }
    wake_.wait_for(lock, absl::ToChronoNanoseconds(poll));
  }
}

}  // namespace usine::train_internal
