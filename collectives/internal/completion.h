// A Work that some other party completes: the backend's worker thread, or the caller itself
// for a call run inline. Holds the call's tensors so that their memory outlives the call.
#ifndef USINE_COLLECTIVES_INTERNAL_COMPLETION_H_
#define USINE_COLLECTIVES_INTERNAL_COMPLETION_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "collectives/communicator.h"

namespace usine::collectives_internal {

class Completion final : public Work {
 public:
  explicit Completion(std::vector<Tensor> keep_alive = {}) : keep_alive_(std::move(keep_alive)) {}

  // Marks the call done with `status` and wakes the waiters. Call once.
  void Complete(absl::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(status);
      done_ = true;
      keep_alive_.clear();
    }
    done_cv_.notify_all();
  }

  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
    return status_;
  }

  absl::StatusOr<bool> Test() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) return false;
    if (!status_.ok()) return status_;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::vector<Tensor> keep_alive_ ABSL_GUARDED_BY(mu_);
};

// A Work that is already complete.
inline std::unique_ptr<Work> Completed(absl::Status status) {
  auto work = std::make_unique<Completion>();
  work->Complete(std::move(status));
  return work;
}

}  // namespace usine::collectives_internal

#endif  // USINE_COLLECTIVES_INTERNAL_COMPLETION_H_
