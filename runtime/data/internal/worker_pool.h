// A fixed set of threads that run submitted closures, oldest first; each submission's
// result comes back through a std::future. `usine prep` tokenises batches of documents on
// one and collects the futures in submission order, so its output does not depend on the
// number of threads.
//
//   WorkerPool pool(4);
//   std::future<int> f = pool.Submit([] { return 6 * 7; });
//   int x = f.get();
//
// Thread-safety: Submit may be called from several threads. The destructor runs what is
// still queued, then joins the threads.
#ifndef USINE_RUNTIME_DATA_INTERNAL_WORKER_POOL_H_
#define USINE_RUNTIME_DATA_INTERNAL_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace usine::data_internal {

class WorkerPool {
 public:
  // REQUIRES: threads >= 1.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  template <typename F>
  std::future<std::invoke_result_t<F>> Submit(F f) {
    auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(f));
    std::future<std::invoke_result_t<F>> result = task->get_future();
    Enqueue([task] { (*task)(); });
    return result;
  }

 private:
  void Enqueue(std::function<void()> closure);
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;  // Signalled on Enqueue and on stop.
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_WORKER_POOL_H_
