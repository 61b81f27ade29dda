#include "runtime/core/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

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

// Polls `done` for up to kSpin, then gives up: true if it became true. A thread that is
// about to get work or a result within microseconds (the loops of a training step follow
// each other that closely) takes it without the futex wake-up and reschedule that blocking
// costs; after kSpin it blocks, so an idle pool takes no cpu time.
constexpr absl::Duration kSpin = absl::Microseconds(50);

template <typename Done>
bool SpinUntil(Done done) {
  const absl::Time give_up = absl::Now() + kSpin;
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (absl::Now() > give_up) return done();
  }
}

// Workers 1..threads-1 wait for a job; the caller is worker 0. One job at a time. Every
// worker acknowledges every job (those beyond its chunks without running anything), so
// that the next job's fields are written only once no worker can still read them.
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { Work(w); });
  }
  // Never destroyed (a static): workers wait for work until the process ends.

  void Run(int64_t n, int chunks, absl::FunctionRef<void(int64_t, int64_t)> body) {
    std::lock_guard<std::mutex> turn(turn_mu_);
    body_ = &body;
    n_ = n;
    chunks_ = chunks;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    {
      // Under mu_, so that a worker between its check and its wait cannot miss it.
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    work_cv_.notify_all();
    RunChunk(0);
    const auto finished = [this] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!SpinUntil(finished)) {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, finished);
    }
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
      const auto posted = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!SpinUntil(posted)) {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, posted);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (w < chunks_) RunChunk(w);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);  // As in Run: no lost wake-up.
        done_cv_.notify_one();
      }
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex turn_mu_;  // One job at a time.
  std::mutex mu_;       // Orders the wake-ups with the waits.
  std::condition_variable work_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // Bumped (release) once a job's fields are written.
  std::atomic<int> pending_{0};          // Workers yet to acknowledge the current job.
  // The current job: written by Run before the generation is bumped, read by the workers
  // after they see it.
  const absl::FunctionRef<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
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
