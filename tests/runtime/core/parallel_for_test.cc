#include "runtime/core/parallel_for.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace usine {
namespace {

// Every item of [0, n) is visited exactly once, in ranges that tile it.
void ExpectEachItemOnce(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> visits(n);
  std::mutex mu;
  std::set<std::pair<int64_t, int64_t>> ranges;
  ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) visits[i].fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    ranges.insert({begin, end});
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[i].load(), 1) << "item " << i << " of " << n;
  int64_t next = 0;
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(begin, next);
    EXPECT_GE(end - begin, std::min(grain, n)) << "a range smaller than the grain";
    next = end;
  }
  EXPECT_EQ(next, n);
  EXPECT_LE(static_cast<int>(ranges.size()), CpuThreads());
}

TEST(ParallelFor, VisitsEachItemOnceInRangesOfAtLeastTheGrain) {
  for (int64_t n : {1, 2, 3, 7, 64, 1000, 100003}) {
    for (int64_t grain : {1, 4, 1000}) ExpectEachItemOnce(n, grain);
  }
}

TEST(ParallelFor, NothingToDoCallsNothing) {
  bool called = false;
  ParallelFor(0, 1, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ParallelFor, TheCutIsTheSameEveryTime) {
  auto cut = [] {
    std::mutex mu;
    std::set<std::pair<int64_t, int64_t>> ranges;
    ParallelFor(12345, 7, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      ranges.insert({b, e});
    });
    return ranges;
  };
  EXPECT_EQ(cut(), cut());
}

TEST(ParallelFor, ANestedLoopRunsInsideItsRange) {
  std::vector<std::atomic<int>> visits(64 * 64);
  ParallelFor(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ParallelFor(64, 1, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) visits[i * 64 + j].fetch_add(1);
      });
    }
  });
  for (const auto& v : visits) ASSERT_EQ(v.load(), 1);
}

TEST(ParallelFor, CallsFromSeveralThreadsTakeTurns) {
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int k = 0; k < 50; ++k) {
        ParallelFor(1000, 10, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 50 * 1000);
}

}  // namespace
}  // namespace usine
