// __syncthreads (device_builtins.h): the block's threads wait until every thread that has not
// exited arrives. Threads that exit while others wait, or one barrier met at two call sites, are
// errors (CUDA leaves both undefined); the barrier then counts the threads that have not exited.
// A thread at __syncthreads while lanes of its warp wait at a warp primitive is a fatal error.
#include "tests/testing/cuda_emulator/device_builtins.h"
#include "tests/testing/cuda_emulator/internal/call_site.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/simt_state.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

void ReleaseBlockBarrier(RunningLaunch& launch) {
  for (EmulatedThread& thread : launch.threads) {
    if (thread.state == ThreadState::kAtBlockBarrier) thread.state = ThreadState::kRunnable;
  }
  for (EmulatedWarp& warp : launch.warps) warp.at_barrier = 0;
  launch.barrier.arrived = 0;
}

bool AllArrived(const BlockBarrier& barrier) {
  return barrier.arrived == barrier.threads - barrier.exited;
}

void ArriveAtBlockBarrier() {
  EmulatedThread& thread = RunningThread("__syncthreads");
  const CallSite site = CaptureCallSite(thread.fiber);
  RunningLaunch& launch = CurrentLaunch();
  BlockBarrier& barrier = launch.barrier;
  EmulatedWarp& warp = launch.warps[thread.warp];
  if (warp.arrived > 0) {
    ReportFatal(
        "lanes of one warp at different primitives: lane %d at __syncthreads\n        %s\n"
        "  while lane %d (and %d more) wait at %s\n        %s",
        thread.lane, Describe(site).c_str(), warp.first_lane, warp.arrived - 1,
        NameOf(warp.primitive), Describe(warp.site).c_str());
  }
  if (barrier.arrived == 0) {
    barrier.site = site;
  } else if (!barrier.reported_sites && !SameSourceLocation(site, barrier.site)) {
    barrier.reported_sites = true;
    ReportError(
        "threads wait at different __syncthreads: thread %d at\n        %s\n  others at\n"
        "        %s",
        thread.linear, Describe(site).c_str(), Describe(barrier.site).c_str());
  }
  if (barrier.exited > 0 && !barrier.reported_exit) {
    barrier.reported_exit = true;
    ReportError("__syncthreads reached by thread %d after %d threads of the block exited",
                thread.linear, barrier.exited);
  }
  ++barrier.arrived;
  ++warp.at_barrier;
  if (AllArrived(barrier)) {
    ReleaseBlockBarrier(launch);
    return;
  }
  thread.state = ThreadState::kAtBlockBarrier;
  thread.fiber.Yield();
}

}  // namespace

void LeaveBlockBarrier(const EmulatedThread& thread) {
  RunningLaunch& launch = CurrentLaunch();
  BlockBarrier& barrier = launch.barrier;
  if (barrier.arrived == 0) return;
  if (!barrier.reported_exit) {
    barrier.reported_exit = true;
    ReportError("thread %d exited while %d threads wait at __syncthreads (at\n        %s)",
                thread.linear, barrier.arrived, Describe(barrier.site).c_str());
  }
  if (AllArrived(barrier)) ReleaseBlockBarrier(launch);
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

void SyncThreads() { cuda_emulator_internal::ArriveAtBlockBarrier(); }

}  // namespace usine::testing::cuda_emulator
