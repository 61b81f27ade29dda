// The state of the running launch that the block scheduler, the barriers, the warp primitives,
// the PTX executor and the reports share: the block's emulated threads (fibers), its warps and
// its barrier. One launch at a time: RunKernel runs each to completion.
//
//   EmulatedThread& thread = RunningThread("__syncwarp");
//   EmulatedWarp& warp = CurrentLaunch().warps[thread.warp];
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_SIMT_STATE_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_SIMT_STATE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/inline_ptx.h"
#include "tests/testing/cuda_emulator/internal/call_site.h"
#include "tests/testing/cuda_emulator/internal/fiber.h"

namespace usine::testing::cuda_emulator_internal {

using cuda_emulator::PtxInstruction;

inline constexpr int kWarpSize = 32;

enum class ThreadState { kRunnable, kAtWarpPrimitive, kAtBlockBarrier, kExited };

enum class WarpPrimitive { kSyncWarp, kShuffle, kMma, kLdMatrix };
const char* NameOf(WarpPrimitive primitive);

// A cp.async copy: its source bytes, read when it was issued, and where they land.
struct AsyncCopy {
  unsigned char* to;
  unsigned char bytes[16];
  int size;
};

// What a lane brings to the warp primitive it waits at, and where its results go: the lane that
// completes the primitive reads and writes them for the whole warp.
struct WarpOperands {
  uint32_t registers[10];  // mma: a[0..3], b[0..1], c[0..3].
  uint64_t value;          // shfl: the lane's value; ldmatrix: its row's shared-window address.
  unsigned member_mask;    // shfl.
  int lane_mask;           // shfl.
  int width;               // shfl.
  void* results[4];        // mma: d[0..3]; ldmatrix: r[0..3].
  uint64_t result;         // shfl.
};

struct EmulatedThread {
  int linear = 0, warp = 0, lane = 0;
  uint3 thread_idx{};
  ThreadState state = ThreadState::kExited;
  Fiber fiber;
  WarpOperands operands{};
  std::vector<AsyncCopy> uncommitted;            // cp.async copies issued since the last commit.
  std::deque<std::vector<AsyncCopy>> committed;  // Groups not yet waited for, oldest first.
};

struct EmulatedWarp {
  int size = 0;  // Lanes: the last warp of a block may be partial.
  int exited = 0;
  int at_barrier = 0;  // Lanes waiting at __syncthreads.
  // The primitive that `arrived` lanes wait at, and where the first of them (first_lane) did.
  int arrived = 0;
  WarpPrimitive primitive = WarpPrimitive::kSyncWarp;
  const PtxInstruction* instruction = nullptr;
  CallSite site;
  int first_lane = 0;
  EmulatedThread* lanes[kWarpSize] = {};
};

struct BlockBarrier {
  int threads = 0, arrived = 0, exited = 0;
  CallSite site;               // Where the first of the waiting threads arrived.
  bool reported_exit = false;  // Each kind of error reported once per block.
  bool reported_sites = false;
};

struct RunningLaunch {
  const void* kernel = nullptr;  // Null outside a launch.
  const char* name = nullptr;    // Null: the function at `kernel`.
  dim3 grid, block;
  uint3 block_idx{};
  size_t shared_bytes = 0;
  void (*thread_body)(const void* closure) = nullptr;
  const void* closure = nullptr;
  std::vector<EmulatedThread> threads;
  std::vector<EmulatedWarp> warps;
  BlockBarrier barrier;
  EmulatedThread* running = nullptr;  // Null while the scheduler runs.
};

// block_scheduler.cc
RunningLaunch& CurrentLaunch();
// The running emulated thread; a fatal error naming `what` outside a kernel.
EmulatedThread& RunningThread(const char* what);
const cuda_emulator::ExecutionOrder& CurrentExecutionOrder();
cuda_emulator::Statistics& MutableStatistics();

// block_barrier.cc: `thread` has exited; the barrier no longer waits for it.
void LeaveBlockBarrier(const EmulatedThread& thread);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_SIMT_STATE_H_
