// Launches (kernel_launch.h): the launch configuration checked as CUDA's runtime would, then the
// grid's blocks one after another, each block's threads as fibers on the host thread, switched
// in the order that SetExecutionOrder chose (cuda_emulator.h) whenever the running one waits or
// exits. A block in which no thread can go on is a deadlock: a fatal error.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/device_builtins.h"
#include "tests/testing/cuda_emulator/internal/api_counts.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/launch_limits.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/simt_state.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"
#include "tests/testing/cuda_emulator/kernel_launch.h"

namespace usine::testing::cuda_emulator {

ThreadCoordinates running_thread{};

}  // namespace usine::testing::cuda_emulator

namespace usine::testing::cuda_emulator_internal {
namespace {

using cuda_emulator::CpAsyncLanding;
using cuda_emulator::ExecutionOrder;
using cuda_emulator::Schedule;

RunningLaunch launch;
ExecutionOrder execution_order;
cuda_emulator::Statistics statistics;

// CUDA's limits on a launch's shape.
constexpr unsigned kMaxBlockThreads = 1024;
constexpr unsigned kMaxBlockZ = 64;
constexpr unsigned kMaxGridX = 2147483647u;
constexpr unsigned kMaxGridYZ = 65535;

bool ValidConfiguration(dim3 grid, dim3 block) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  return threads >= 1 && threads <= kMaxBlockThreads && block.z <= kMaxBlockZ && grid.x >= 1 &&
         grid.y >= 1 && grid.z >= 1 && grid.x <= kMaxGridX && grid.y <= kMaxGridYZ &&
         grid.z <= kMaxGridYZ;
}

void CheckCopiesWaitedFor(const EmulatedThread& thread) {
  if (thread.uncommitted.empty() && thread.committed.empty()) return;
  size_t committed = 0;
  for (const std::vector<AsyncCopy>& group : thread.committed) committed += group.size();
  ReportError(
      "thread %d (warp %d, lane %d) ended with %zu cp.async copies never committed and %zu in "
      "committed groups never waited for",
      thread.linear, thread.warp, thread.lane, thread.uncommitted.size(), committed);
}

void ThreadExited(EmulatedThread& thread) {
  thread.state = ThreadState::kExited;
  EmulatedWarp& warp = launch.warps[thread.warp];
  ++warp.exited;
  ++launch.barrier.exited;
  if (warp.arrived > 0) {
    ReportFatal(
        "lane %d exited while %d lanes of its warp wait at %s (the first, lane %d, at\n"
        "        %s)",
        thread.lane, warp.arrived, NameOf(warp.primitive), warp.first_lane,
        Describe(warp.site).c_str());
  }
  LeaveBlockBarrier(thread);
  CheckCopiesWaitedFor(thread);
}

// Each fiber's entry: the kernel's body for the running thread, then its exit.
void RunEmulatedThread() {
  launch.thread_body(launch.closure);
  ThreadExited(*launch.running);
}

void SwitchTo(EmulatedThread& thread) {
  launch.running = &thread;
  cuda_emulator::running_thread.thread_idx = thread.thread_idx;
  thread.fiber.Resume();
  launch.running = nullptr;
}

std::string WaitingThreads() {
  std::string text;
  for (const EmulatedWarp& warp : launch.warps) {
    int runnable = 0, at_warp = 0, at_barrier = 0, exited = 0;
    for (int l = 0; l < warp.size; ++l) {
      switch (warp.lanes[l]->state) {
        case ThreadState::kRunnable:
          ++runnable;
          break;
        case ThreadState::kAtWarpPrimitive:
          ++at_warp;
          break;
        case ThreadState::kAtBlockBarrier:
          ++at_barrier;
          break;
        case ThreadState::kExited:
          ++exited;
          break;
      }
    }
    text += StringPrintf("    warp %td: %d at %s, %d at __syncthreads, %d exited, %d runnable\n",
                         &warp - launch.warps.data(), at_warp,
                         at_warp > 0 ? NameOf(warp.primitive) : "-", at_barrier, exited, runnable);
    if (at_warp > 0) text += StringPrintf("        at %s\n", Describe(warp.site).c_str());
  }
  if (launch.barrier.arrived > 0) {
    text += StringPrintf("    __syncthreads at %s\n", Describe(launch.barrier.site).c_str());
  }
  return text;
}

void StartThreads() {
  const int n = static_cast<int>(launch.block.x * launch.block.y * launch.block.z);
  launch.threads.resize(std::max<size_t>(launch.threads.size(), n));
  launch.warps.assign((n + kWarpSize - 1) / kWarpSize, EmulatedWarp{});
  launch.barrier = BlockBarrier{};
  launch.barrier.threads = n;
  for (int i = 0; i < n; ++i) {
    EmulatedThread& thread = launch.threads[i];
    thread.linear = i;
    thread.warp = i / kWarpSize;
    thread.lane = i % kWarpSize;
    thread.thread_idx = uint3{i % launch.block.x, i / launch.block.x % launch.block.y,
                              i / (launch.block.x * launch.block.y)};
    thread.state = ThreadState::kRunnable;
    thread.uncommitted.clear();
    thread.committed.clear();
    thread.fiber.Start(i, &RunEmulatedThread);
    EmulatedWarp& warp = launch.warps[thread.warp];
    warp.lanes[warp.size++] = &thread;
  }
}

void RunBlock(uint3 block_idx) {
  launch.block_idx = block_idx;
  cuda_emulator::running_thread.block_idx = block_idx;
  StartBlockSharedMemory(launch.shared_bytes);
  StartThreads();
  const int n = launch.barrier.threads;
  const bool reversed = execution_order.schedule == Schedule::kRoundRobinReversed ||
                        execution_order.schedule == Schedule::kHighestWarpFirst;
  const bool greedy = execution_order.schedule == Schedule::kLowestWarpFirst ||
                      execution_order.schedule == Schedule::kHighestWarpFirst;
  while (launch.barrier.exited < n) {
    bool progressed = false;
    for (int k = 0; k < n; ++k) {
      EmulatedThread& thread = launch.threads[reversed ? n - 1 - k : k];
      if (thread.state != ThreadState::kRunnable) continue;
      SwitchTo(thread);
      progressed = true;
      // Greedy: start over from the first thread, so that its warp runs on.
      if (greedy) break;
    }
    if (!progressed) ReportFatal("deadlock: no thread can go on\n%s", WaitingThreads().c_str());
  }
  EndBlockSharedMemory();
}

// A launch's pointer arguments as its accesses on `stream` (internal/stream_order.h): from each
// pointer to its allocation's end.
void IssueLaunch(const void* kernel, const char* name, cudaStream_t stream,
                 const std::vector<cuda_emulator::KernelPointer>& pointers) {
  // Argument k of a kernel (from 1), in reports: each access names a string that outlives it.
  static constexpr const char* kArguments[] = {
      "argument 1",  "argument 2",  "argument 3",  "argument 4",  "argument 5",  "argument 6",
      "argument 7",  "argument 8",  "argument 9",  "argument 10", "argument 11", "argument 12",
      "argument 13", "argument 14", "argument 15", "argument 16", "argument 17", "argument 18",
      "argument 19", "argument 20", "argument 21", "argument 22", "argument 23", "argument 24"};
  constexpr int kNamed = sizeof(kArguments) / sizeof(kArguments[0]);
  std::vector<DeviceAccess> accesses;
  accesses.reserve(pointers.size());
  for (const cuda_emulator::KernelPointer& pointer : pointers) {
    accesses.push_back(
        {pointer.p, SIZE_MAX, pointer.written ? DeviceAccess::kWrite : DeviceAccess::kRead,
         pointer.position < kNamed ? kArguments[pointer.position] : "an argument past the 24th"});
  }
  IssueKernelOnStream(kernel, name, stream, accesses);
}

void RunLaunch(const void* kernel, const char* name, dim3 grid, dim3 block, size_t shared_bytes,
               cudaStream_t stream, const std::vector<cuda_emulator::KernelPointer>& pointers,
               void (*thread_body)(const void* closure), const void* closure) {
  if (launch.kernel != nullptr) ReportFatal("a kernel launch inside a kernel");
  // Named only for a report: FunctionAt runs addr2line over the executable.
  const auto kernel_name = [&] { return name != nullptr ? std::string(name) : FunctionAt(kernel); };
  if (!ValidConfiguration(grid, block)) {
    Note("launch of %s refused: grid (%u,%u,%u), block (%u,%u,%u)", kernel_name().c_str(), grid.x,
         grid.y, grid.z, block.x, block.y, block.z);
    SetLastError(cudaErrorInvalidConfiguration);
    return;
  }
  if (shared_bytes > DynamicSharedLimit(kernel)) {
    Note(
        "launch of %s refused: %zu bytes of dynamic shared memory, beyond its limit of %zu "
        "(cudaFuncSetAttribute)",
        kernel_name().c_str(), shared_bytes, DynamicSharedLimit(kernel));
    SetLastError(cudaErrorInvalidValue);
    return;
  }
  IssueLaunch(kernel, name, stream, pointers);
  ++statistics.launches;
  launch.kernel = kernel;
  launch.name = name;
  launch.grid = grid;
  launch.block = block;
  launch.shared_bytes = shared_bytes;
  launch.thread_body = thread_body;
  launch.closure = closure;
  cuda_emulator::running_thread.block_dim = block;
  cuda_emulator::running_thread.grid_dim = grid;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) RunBlock(uint3{x, y, z});
    }
  }
  CheckDeviceGuards(kernel_name);
  launch.kernel = nullptr;
}

}  // namespace

RunningLaunch& CurrentLaunch() { return launch; }

EmulatedThread& RunningThread(const char* what) {
  if (launch.running == nullptr) ReportFatal("%s outside a kernel", what);
  return *launch.running;
}

const ExecutionOrder& CurrentExecutionOrder() { return execution_order; }
cuda_emulator::Statistics& MutableStatistics() { return statistics; }

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

void RunKernel(const void* kernel, const char* name, dim3 grid, dim3 block, size_t shared_bytes,
               cudaStream_t stream, const std::vector<KernelPointer>& pointers,
               void (*thread_body)(const void* closure), const void* closure) {
  // Launches from several host threads run one at a time: the running launch is global state.
  static std::mutex launch_mu;
  std::lock_guard<std::mutex> lock(launch_mu);
  cuda_emulator_internal::RunLaunch(kernel, name, grid, block, shared_bytes, stream, pointers,
                                    thread_body, closure);
}

void SetExecutionOrder(const ExecutionOrder& order) {
  cuda_emulator_internal::execution_order = order;
}

std::vector<ExecutionOrder> AllExecutionOrders() {
  std::vector<ExecutionOrder> orders;
  for (CpAsyncLanding landing : {CpAsyncLanding::kAtWait, CpAsyncLanding::kAtIssue}) {
    for (Schedule schedule : {Schedule::kRoundRobin, Schedule::kRoundRobinReversed,
                              Schedule::kLowestWarpFirst, Schedule::kHighestWarpFirst}) {
      orders.push_back({schedule, landing});
    }
  }
  return orders;
}

std::string DescribeExecutionOrder(const ExecutionOrder& order) {
  static constexpr const char* kSchedules[] = {"round robin", "round robin reversed",
                                               "lowest warp first", "highest warp first"};
  return std::string(kSchedules[static_cast<int>(order.schedule)]) + ", cp.async landing " +
         (order.cp_async_landing == CpAsyncLanding::kAtWait ? "at the wait" : "at issue");
}

Statistics operator-(const Statistics& after, const Statistics& before) {
  return {.launches = after.launches - before.launches,
          .cp_async_copies = after.cp_async_copies - before.cp_async_copies,
          .host_waits = after.host_waits - before.host_waits,
          .pageable_uploads = after.pageable_uploads - before.pageable_uploads,
          .device_allocations = after.device_allocations - before.device_allocations,
          .device_frees = after.device_frees - before.device_frees,
          .dgelu_products = after.dgelu_products - before.dgelu_products};
}

Statistics TotalStatistics() {
  using cuda_emulator_internal::ApiCall;
  using cuda_emulator_internal::CountOf;
  Statistics totals = cuda_emulator_internal::statistics;
  totals.host_waits = CountOf(ApiCall::kHostWait);
  totals.pageable_uploads = CountOf(ApiCall::kPageableUpload);
  totals.device_allocations = CountOf(ApiCall::kDeviceAllocation);
  totals.device_frees = CountOf(ApiCall::kDeviceFree);
  totals.dgelu_products = CountOf(ApiCall::kDgeluProduct);
  return totals;
}

}  // namespace usine::testing::cuda_emulator
