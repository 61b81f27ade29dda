// What a test controls and observes of the CUDA emulator (README.md): guarded device arrays,
// the order in which emulated threads run, and what the emulator found. The emulator runs CUDA
// sources rewritten by transform_cuda_source.py as host C++ on the calling thread: a launch runs
// to completion before it returns, its blocks one after another, each block's threads as fibers.
// Launches from several host threads run one at a time; the functions below are for one host
// thread (the test's).
//
//   DeviceArray<float> out(n, "out");
//   SetExecutionOrder({Schedule::kHighestWarpFirst, CpAsyncLanding::kAtIssue});
//   ASSERT_EQ(LaunchMyKernel(in.data(), out.data(), nullptr), cudaSuccess);
//   EXPECT_EQ(ErrorCount(), 0);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define USINE_CUDA_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USINE_CUDA_EMULATOR_ASAN 1
#endif
#endif
#ifndef USINE_CUDA_EMULATOR_ASAN
#define USINE_CUDA_EMULATOR_ASAN 0
#endif

namespace usine::testing::cuda_emulator {

// The exit status of a process that the emulator stopped on an error it cannot go on from (lanes
// of a warp at different warp primitives, a deadlock, an instruction it does not emulate, an
// ldmatrix or cp.async address outside shared memory), after a report on stderr.
inline constexpr int kFatalExitStatus = 3;

// Whether AddressSanitizer guards device arrays and each block's dynamic shared memory (exact-size
// heap blocks) in place of the emulator's guard pages and canaries.
inline constexpr bool kUsesAddressSanitizer = USINE_CUDA_EMULATOR_ASAN;

// A device allocation of `bytes` (at least 1), 256-byte aligned as cudaMalloc's, named `name` in
// reports. Guarded: an access past the end rounded up to 256 bytes faults (SIGSEGV; the next page
// is inaccessible), and a write into the bytes before the start or between the end and the next
// 256 bytes is an error reported after the launch that made it. Returns null when memory is
// short. The caller frees it with DeviceFree.
void* DeviceMalloc(size_t bytes, const char* name);
void DeviceFree(void* p);

// `size` elements of T in a guarded device allocation (DeviceMalloc), uninitialised.
template <typename T>
class DeviceArray {
 public:
  DeviceArray(size_t size, const char* name)
      : data_(static_cast<T*>(DeviceMalloc(size * sizeof(T), name))), size_(size) {}
  ~DeviceArray() { DeviceFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) const { return data_[i]; }
  std::vector<T> ToVector() const { return {data_, data_ + size_}; }

 private:
  T* data_;
  size_t size_;
};

// The order in which a block's threads run between the points where they wait (a barrier, a warp
// primitive). Results that differ between orders reveal races between threads.
enum class Schedule {
  kRoundRobin,          // Each runnable thread in turn, in increasing order (the default).
  kRoundRobinReversed,  // The same in decreasing order.
  kLowestWarpFirst,     // The lowest runnable thread, again after each wait: a warp runs until
                        // all its threads wait at a block barrier, then the next.
  kHighestWarpFirst,    // The same from the highest thread down.
};

// When cp.async copies write shared memory.
enum class CpAsyncLanding {
  kAtWait,   // When the issuing thread's wait retires their group, the latest moment PTX allows:
             // a read before the wait sees the poison (the default).
  kAtIssue,  // When issued, the earliest: a buffer still read by other warps when its refill is
             // issued is clobbered.
};

struct ExecutionOrder {
  Schedule schedule = Schedule::kRoundRobin;
  CpAsyncLanding cp_async_landing = CpAsyncLanding::kAtWait;
};

// Takes effect at the next launch and stays until set again.
void SetExecutionOrder(const ExecutionOrder& order);

// Every schedule with every cp.async landing, the default first.
std::vector<ExecutionOrder> AllExecutionOrders();
std::string DescribeExecutionOrder(const ExecutionOrder& order);

// Errors that the emulator reported (on stderr, as it found them) and went on from: threads that
// exited while others wait at __syncthreads, two __syncthreads call sites met by one barrier,
// cp.async copies never waited for, a write past a device array or past the block's dynamic
// shared memory.
int ErrorCount();
// The latest of them ("" before the first).
std::string LastErrorMessage();

// Totals since the process started.
struct Statistics {
  int64_t launches = 0;         // Kernel launches that ran (not those refused).
  int64_t cp_async_copies = 0;  // cp.async instructions executed, by all threads.
  // Calls after which a GPU's host would have waited for the device to run what was enqueued
  // (work runs when issued here, so none of them waits): cudaStreamSynchronize,
  // cudaEventSynchronize, cudaDeviceSynchronize, a cudaMemcpyAsync from device memory into
  // pageable host memory (not cudaHostAlloc's), which returns only once it has copied, and
  // cudaFree and cudaFreeHost, which synchronise the device. Not the polling of an event
  // (cudaEventQuery), which is complete once recorded here.
  int64_t host_waits = 0;
  // cudaMemcpyAsync calls from pageable host memory into device memory, which a GPU's driver may
  // make wait for the stream, to stage the bytes in pinned memory first.
  int64_t pageable_uploads = 0;
  int64_t device_allocations = 0;  // cudaMalloc calls that allocated.
  int64_t device_frees = 0;        // cudaFree calls that freed (host waits too).
  int64_t dgelu_products = 0;      // cublasLtMatmul calls with the DGELU epilogue that ran.
};
Statistics TotalStatistics();
// Each count of `after` less that of `before`.
Statistics operator-(const Statistics& after, const Statistics& before);

// What `calls` (run here) added to the totals.
template <typename Calls>
Statistics StatisticsOf(Calls&& calls) {
  const Statistics before = TotalStatistics();
  calls();
  return TotalStatistics() - before;
}

// Makes the next NCCL collective or point-to-point call of this process (on any communicator)
// fail after it has been taken in, as when a peer dies while it runs: the call does its work and
// answers as usual, then its communicator's state (ncclCommGetAsyncError) reports
// ncclRemoteError, once it is no longer in progress, until the communicator is aborted. A next
// call refused outright (a bad argument) fails as it would have, and takes the failure too. (A
// non-blocking communicator's first call answers ncclInProgress, so its caller, polling the
// state, finds the failure while it takes the call in: make another call first.)
void FailNextNcclCallInTheBackground();

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_H_
