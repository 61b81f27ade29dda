#include "runtime/data/internal/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace usine::data_internal {
namespace {

TEST(WorkerPool, EveryFutureGetsItsOwnResultWhateverTheFinishingOrder) {
  WorkerPool pool(4);
  std::vector<std::future<int>> results;
  for (int i = 0; i < 100; ++i) {
    results.push_back(pool.Submit([i] {
      // Early tasks take longest, so they finish out of submission order.
      std::this_thread::sleep_for(std::chrono::microseconds((100 - i) * 20));
      return i * i;
    }));
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(results[i].get(), i * i);
}

TEST(WorkerPool, RunsTasksConcurrentlyOnItsThreads) {
  WorkerPool pool(3);
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, most = 0;
  std::vector<std::future<void>> done;
  for (int i = 0; i < 6; ++i) {
    done.push_back(pool.Submit([&] {
      std::unique_lock<std::mutex> lock(mu);
      most = std::max(most, ++running);
      cv.notify_all();
      // Each task waits (up to 10 s, however slow the machine) for all three threads.
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return most == 3; });
      --running;
    }));
  }
  for (auto& d : done) d.get();
  EXPECT_EQ(most, 3);
}

TEST(WorkerPool, TheDestructorRunsWhatIsStillQueued) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1);
    for (int i = 0; i < 20; ++i) {
      (void)pool.Submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace usine::data_internal
