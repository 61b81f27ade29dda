// The CUDA runtime emulation's counts of the calls that make a GPU's host wait or that reach the
// device allocator (cuda_emulator.h's Statistics), which tests of a training step read.
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {
namespace {

TEST(RuntimeApiCounts, SynchronisationsWaitAndQueriesDoNot) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(event, stream), cudaSuccess);
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaEventQuery(event), cudaSuccess); }).host_waits, 0);
  EXPECT_EQ(StatisticsOf([&] {
              ASSERT_EQ(cudaStreamWaitEvent(nullptr, event, 0), cudaSuccess);
            }).host_waits,
            0);
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaEventSynchronize(event), cudaSuccess); }).host_waits,
            1);
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess); }).host_waits,
            1);
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess); }).host_waits, 1);
  ASSERT_EQ(cudaEventDestroy(event), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  // A refused call waits for nothing.
  EXPECT_EQ(StatisticsOf([&] { EXPECT_NE(cudaStreamSynchronize(stream), cudaSuccess); }).host_waits,
            0);
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
    return StatisticsOf(
        [&] { ASSERT_EQ(cudaMemcpyAsync(dst, src, bytes, kind, nullptr), cudaSuccess); });
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
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaFreeHost(pinned), cudaSuccess); }).host_waits, 1);
  ASSERT_EQ(cudaFree(device), cudaSuccess);
}

TEST(RuntimeApiCounts, AllocationsAndFreesAreCounted) {
  void* p = nullptr;
  const Statistics malloced = StatisticsOf([&] { ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess); });
  EXPECT_EQ(malloced.device_allocations, 1);
  EXPECT_EQ(malloced.device_frees, 0);
  const Statistics freed = StatisticsOf([&] { ASSERT_EQ(cudaFree(p), cudaSuccess); });
  EXPECT_EQ(freed.device_allocations, 0);
  EXPECT_EQ(freed.device_frees, 1);
  EXPECT_EQ(freed.host_waits, 1);  // cudaFree synchronises the device.
  EXPECT_EQ(StatisticsOf([&] { ASSERT_EQ(cudaFree(nullptr), cudaSuccess); }).device_frees, 0);
}

// Two streams and two device buffers, for the checks of the order between streams: each case
// asks how many errors a few calls add.
class StreamOrder : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cudaStreamCreateWithFlags(&a_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaStreamCreateWithFlags(&b_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&x_, kBytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&y_, kBytes), cudaSuccess);
  }
  void TearDown() override {
    cudaFree(x_);
    cudaFree(y_);
    cudaEventDestroy(event_);
    cudaStreamDestroy(a_);
    cudaStreamDestroy(b_);
  }

  // The errors that `calls` reported, issued after a wait for the device (which orders every
  // call before it before them).
  template <typename Calls>
  int Races(Calls&& calls) {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const int before = ErrorCount();
    calls();
    return ErrorCount() - before;
  }
  void Write(void* p, cudaStream_t stream, size_t bytes = kBytes) {
    ASSERT_EQ(cudaMemsetAsync(p, 1, bytes, stream), cudaSuccess);
  }
  // Reads x into y on `stream`.
  void CopyXToY(cudaStream_t stream) {
    ASSERT_EQ(cudaMemcpyAsync(y_, x_, kBytes, cudaMemcpyDeviceToDevice, stream), cudaSuccess);
  }

  static constexpr size_t kBytes = 1024;
  cudaStream_t a_ = nullptr, b_ = nullptr;
  cudaEvent_t event_ = nullptr;
  void* x_ = nullptr;
  void* y_ = nullptr;
};

TEST_F(StreamOrder, AReadOnAnotherStreamOfWhatOneWroteIsARace) {
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              CopyXToY(b_);
            }),
            1);
  EXPECT_NE(LastErrorMessage().find("cudaMemcpyAsync source on stream #"), std::string::npos)
      << LastErrorMessage();
  EXPECT_NE(LastErrorMessage().find("which cudaMemsetAsync destination on stream #"),
            std::string::npos)
      << LastErrorMessage();
}

TEST_F(StreamOrder, AWriteOnAnotherStreamOfWhatOneReadIsARace) {
  EXPECT_EQ(Races([&] {
              CopyXToY(a_);
              Write(x_, b_);
            }),
            1);
  EXPECT_EQ(Races([&] {
              CopyXToY(a_);
              Write(y_, nullptr);  // The default stream orders nothing by itself either.
            }),
            1);
}

TEST_F(StreamOrder, AnEventWaitedForOrdersTheStreams) {
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              ASSERT_EQ(cudaEventRecord(event_, a_), cudaSuccess);
              ASSERT_EQ(cudaStreamWaitEvent(b_, event_, 0), cudaSuccess);
              CopyXToY(b_);
            }),
            0);
  // Recorded before the write: it orders nothing after it.
  EXPECT_EQ(Races([&] {
              ASSERT_EQ(cudaEventRecord(event_, a_), cudaSuccess);
              Write(x_, a_);
              ASSERT_EQ(cudaStreamWaitEvent(b_, event_, 0), cudaSuccess);
              CopyXToY(b_);
            }),
            1);
}

// The legacy default stream and a blocking stream (created without cudaStreamNonBlocking) each
// run after what the other was given before; a non-blocking stream does not.
TEST_F(StreamOrder, TheDefaultStreamAndABlockingStreamAreOrdered) {
  cudaStream_t blocking = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&blocking, 0), cudaSuccess);
  EXPECT_EQ(Races([&] {
              Write(x_, blocking);
              CopyXToY(nullptr);
              Write(y_, blocking);
            }),
            0);
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              CopyXToY(nullptr);
            }),
            1);
  ASSERT_EQ(cudaStreamDestroy(blocking), cudaSuccess);
}

TEST_F(StreamOrder, HostWaitsOrderWhatTheHostIssuesAfterThem) {
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              ASSERT_EQ(cudaStreamSynchronize(a_), cudaSuccess);
              CopyXToY(b_);
              ASSERT_EQ(cudaEventRecord(event_, b_), cudaSuccess);
              ASSERT_EQ(cudaEventQuery(event_), cudaSuccess);  // Found complete.
              Write(y_, a_);
              Write(x_, a_);
              ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
              CopyXToY(b_);
            }),
            0);
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              CopyXToY(b_);
            }),
            1);
}

TEST_F(StreamOrder, OneStreamsCallsReadsOnTwoAndDisjointWritesAreNoRaces) {
  char* const y = static_cast<char*>(y_);
  EXPECT_EQ(
      Races([&] {
        Write(x_, a_);
        CopyXToY(a_);  // After the write on its stream.
        ASSERT_EQ(cudaStreamSynchronize(a_), cudaSuccess);
        // Both read x; each writes its own half of y.
        ASSERT_EQ(cudaMemcpyAsync(y, x_, kBytes / 2, cudaMemcpyDeviceToDevice, a_), cudaSuccess);
        ASSERT_EQ(cudaMemcpyAsync(y + kBytes / 2, x_, kBytes / 2, cudaMemcpyDeviceToDevice, b_),
                  cudaSuccess);
      }),
      0);
}

// NCCL's buffers are its calls' accesses (a world of one: no MPI): an all-reduce reads its send
// buffer and writes its receive buffer, in place one access.
TEST_F(StreamOrder, AnNcclCallReadsAndWritesItsBuffers) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  ASSERT_EQ(ncclCommInitRankConfig(&comm, 1, id, 0, &config), ncclSuccess);
  constexpr size_t kFloats = kBytes / sizeof(float);
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              ASSERT_EQ(cudaEventRecord(event_, a_), cudaSuccess);
              ASSERT_EQ(cudaStreamWaitEvent(b_, event_, 0), cudaSuccess);
              ASSERT_EQ(ncclAllReduce(x_, y_, kFloats, ncclFloat32, ncclSum, comm, b_),
                        ncclSuccess);
            }),
            0);
  EXPECT_EQ(Races([&] {
              Write(x_, a_);
              ASSERT_EQ(ncclAllReduce(x_, y_, kFloats, ncclFloat32, ncclSum, comm, b_),
                        ncclSuccess);
            }),
            1);
  EXPECT_NE(LastErrorMessage().find("ncclAllReduce sendbuff on stream #"), std::string::npos)
      << LastErrorMessage();
  EXPECT_EQ(Races([&] {
              ASSERT_EQ(ncclAllReduce(y_, y_, kFloats, ncclFloat32, ncclSum, comm, b_),
                        ncclSuccess);
              Write(y_, a_);
            }),
            1);
  EXPECT_NE(LastErrorMessage().find("which ncclAllReduce recvbuff on stream #"), std::string::npos)
      << LastErrorMessage();
  ASSERT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

}  // namespace
}  // namespace usine::testing::cuda_emulator
