#include "runtime/core/parallel_for.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace usine {
namespace {

thread_local bool in_parallel_body = false;

int ThreadsFromEnvironment() {
  for (const char* name : {"USINE_CPU_THREADS", "OPENBLAS_NUM_THREADS"}) {
    if (const char* value = std::getenv(name); value != nullptr && std::atoi(value) >= 1) {
      return std::atoi(value);
    }
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Workers 1..threads-1 wait for a job; the caller is worker 0. One job at a time.
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { Work(w); });
  }
  // Never destroyed (a static): workers wait for work until the process ends.

  void Run(int64_t n, int chunks, absl::FunctionRef<void(int64_t, int64_t)> body) {
    std::lock_guard<std::mutex> turn(turn_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      body_ = &body;
      n_ = n;
      chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    work_cv_.notify_all();
    RunChunk(0);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    body_ = nullptr;
  }

 private:
  void RunChunk(int chunk) {
    const int64_t begin = n_ * chunk / chunks_, end = n_ * (chunk + 1) / chunks_;
    in_parallel_body = true;
    (*body_)(begin, end);
    in_parallel_body = false;
  }

  void Work(int w) {
    uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (w >= chunks_) continue;  // Fewer chunks than workers this time.
      }
      RunChunk(w);
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex turn_mu_;  // One job at a time.
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  const absl::FunctionRef<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
  int pending_ = 0;
};

}  // namespace

int CpuThreads() {
  static const int threads = ThreadsFromEnvironment();
  return threads;
}

void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> body) {
  if (n <= 0) return;
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int chunks = static_cast<int>(std::min<int64_t>(CpuThreads(), most));
  if (chunks <= 1 || in_parallel_body) {
    body(0, n);
    return;
  }
  static Pool* pool = new Pool(CpuThreads());
  pool->Run(n, chunks, body);
}

}  // namespace usine
