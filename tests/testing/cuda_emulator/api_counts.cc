// The runtime API's call counts (internal/api_counts.h): one relaxed atomic counter per kind, as
// the calls come from any host thread and are read as totals.
#include "tests/testing/cuda_emulator/internal/api_counts.h"

#include <atomic>

namespace usine::testing::cuda_emulator_internal {
namespace {

std::atomic<int64_t> counts[static_cast<int>(ApiCall::kCount)];

}  // namespace

void Count(ApiCall call) { counts[static_cast<int>(call)].fetch_add(1, std::memory_order_relaxed); }

int64_t CountOf(ApiCall call) {
  return counts[static_cast<int>(call)].load(std::memory_order_relaxed);
}

}  // namespace usine::testing::cuda_emulator_internal
