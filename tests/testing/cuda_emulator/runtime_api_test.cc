// The CUDA runtime emulation's counts of the calls that make a GPU's host wait or that reach the
// device allocator (cuda_emulator.h's Statistics), which tests of a training step read.
#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {
namespace {

// What `calls` added to the statistics.
template <typename Calls>
Statistics Added(Calls&& calls) {
  const Statistics before = TotalStatistics();
  calls();
  const Statistics after = TotalStatistics();
  return {.launches = after.launches - before.launches,
          .cp_async_copies = after.cp_async_copies - before.cp_async_copies,
          .host_waits = after.host_waits - before.host_waits,
          .pageable_uploads = after.pageable_uploads - before.pageable_uploads,
          .device_allocations = after.device_allocations - before.device_allocations,
          .device_frees = after.device_frees - before.device_frees};
}

TEST(RuntimeApiCounts, SynchronisationsWaitAndQueriesDoNot) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(event, stream), cudaSuccess);
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaEventQuery(event), cudaSuccess); }).host_waits, 0);
  EXPECT_EQ(
      Added([&] { ASSERT_EQ(cudaStreamWaitEvent(nullptr, event, 0), cudaSuccess); }).host_waits, 0);
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaEventSynchronize(event), cudaSuccess); }).host_waits, 1);
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess); }).host_waits, 1);
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess); }).host_waits, 1);
  ASSERT_EQ(cudaEventDestroy(event), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  // A refused call waits for nothing.
  EXPECT_EQ(Added([&] { EXPECT_NE(cudaStreamSynchronize(stream), cudaSuccess); }).host_waits, 0);
  cudaGetLastError();
}

// A copy from the device into pageable memory returns once it has copied; one from pageable
// memory into the device may wait to stage it; to or from pinned memory (the whole allocation or
// a part of it), neither.
TEST(RuntimeApiCounts, CopiesBetweenTheDeviceAndPageableMemoryAreCounted) {
  constexpr size_t kBytes = 4096;
  void* device = nullptr;
  void* pinned = nullptr;
  ASSERT_EQ(cudaMalloc(&device, kBytes), cudaSuccess);
  ASSERT_EQ(cudaHostAlloc(&pinned, kBytes, 0), cudaSuccess);
  std::vector<char> pageable(kBytes);
  char* pinned_bytes = static_cast<char*>(pinned);
  const auto copy = [&](void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    return Added([&] { ASSERT_EQ(cudaMemcpyAsync(dst, src, bytes, kind, nullptr), cudaSuccess); });
  };
  for (cudaMemcpyKind kind : {cudaMemcpyDeviceToHost, cudaMemcpyDefault}) {
    const Statistics down = copy(pageable.data(), device, kBytes, kind);
    EXPECT_EQ(down.host_waits, 1);
    EXPECT_EQ(down.pageable_uploads, 0);
  }
  for (cudaMemcpyKind kind : {cudaMemcpyHostToDevice, cudaMemcpyDefault}) {
    const Statistics up = copy(device, pageable.data(), kBytes, kind);
    EXPECT_EQ(up.host_waits, 0);
    EXPECT_EQ(up.pageable_uploads, 1);
  }
  for (const Statistics& pinned_copy :
       {copy(pinned, device, kBytes, cudaMemcpyDeviceToHost),
        copy(pinned_bytes + 1024, device, 1024, cudaMemcpyDefault),
        copy(device, pinned, kBytes, cudaMemcpyDefault),
        copy(device, pinned_bytes + 4000, 96, cudaMemcpyHostToDevice),
        copy(device, device, kBytes, cudaMemcpyDeviceToDevice)}) {
    EXPECT_EQ(pinned_copy.host_waits, 0);
    EXPECT_EQ(pinned_copy.pageable_uploads, 0);
  }
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaFreeHost(pinned), cudaSuccess); }).host_waits, 1);
  ASSERT_EQ(cudaFree(device), cudaSuccess);
}

TEST(RuntimeApiCounts, AllocationsAndFreesAreCounted) {
  void* p = nullptr;
  const Statistics malloced = Added([&] { ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess); });
  EXPECT_EQ(malloced.device_allocations, 1);
  EXPECT_EQ(malloced.device_frees, 0);
  const Statistics freed = Added([&] { ASSERT_EQ(cudaFree(p), cudaSuccess); });
  EXPECT_EQ(freed.device_allocations, 0);
  EXPECT_EQ(freed.device_frees, 1);
  EXPECT_EQ(freed.host_waits, 1);  // cudaFree synchronises the device.
  EXPECT_EQ(Added([&] { ASSERT_EQ(cudaFree(nullptr), cudaSuccess); }).device_frees, 0);
}

}  // namespace
}  // namespace usine::testing::cuda_emulator
