// The NCCL emulation (shim/nccl.h) across processes, under mpirun: communicators made from a
// shared unique id and by splitting, every collective in f32, bf16 and f16, point-to-point, the
// answers of a non-blocking communicator, and what it refuses. Run at 2 and 4 ranks.
#include <algorithm>
#include <cstring>

#include <cuda_bf16.h>
#include <mpi.h>
#include <nccl.h>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {
namespace {

class NcclEmulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    ncclUniqueId id{};
    if (rank_ == 0) {
      ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
    }
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;  // Blocking: every call answers when done.
    ASSERT_EQ(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), ncclSuccess)
        << ncclGetLastError(nullptr);
  }

  // Queries `comm`'s state until it is no longer ncclInProgress; returns it, and how many
  // queries answered ncclInProgress in `in_progress`.
  static ncclResult_t PollState(ncclComm_t comm, int& in_progress) {
    in_progress = 0;
    ncclResult_t state = ncclInProgress;
    while (in_progress < 100) {
      if (ncclCommGetAsyncError(comm, &state) != ncclSuccess || state != ncclInProgress) break;
      ++in_progress;
    }
    return state;
  }
  void TearDown() override { EXPECT_EQ(ncclCommDestroy(comm_), ncclSuccess); }

  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
};

TEST_F(NcclEmulationTest, TheCommunicatorHasTheWorldsRanks) {
  int rank = -1, count = -1;
  ASSERT_EQ(ncclCommUserRank(comm_, &rank), ncclSuccess);
  ASSERT_EQ(ncclCommCount(comm_, &count), ncclSuccess);
  EXPECT_EQ(rank, rank_);
  EXPECT_EQ(count, size_);
  ncclResult_t state = ncclInProgress;
  ASSERT_EQ(ncclCommGetAsyncError(comm_, &state), ncclSuccess);
  EXPECT_EQ(state, ncclSuccess);
}

TEST_F(NcclEmulationTest, AllReduceSumsAveragesAndTakesTheMaxInEveryType) {
  constexpr int kN = 5;
  DeviceArray<float> f32(kN, "f32");
  DeviceArray<__nv_bfloat16> bf16(kN, "bf16");
  DeviceArray<uint16_t> f16(kN, "f16");
  for (int i = 0; i < kN; ++i) {
    f32[i] = static_cast<float>(rank_ + i);
    bf16[i] = __float2bfloat16_rn(static_cast<float>(rank_ + i));
  }
  const uint16_t f16_of[] = {0x0000, 0x3c00, 0x4000, 0x4200, 0x4400};  // 0, 1, 2, 3, 4
  for (int i = 0; i < kN; ++i) f16[i] = f16_of[rank_ % 5];
  ASSERT_EQ(ncclAllReduce(f32.data(), f32.data(), kN, ncclFloat32, ncclSum, comm_, nullptr),
            ncclSuccess);
  ASSERT_EQ(ncclAllReduce(bf16.data(), bf16.data(), kN, ncclBfloat16, ncclAvg, comm_, nullptr),
            ncclSuccess);
  ASSERT_EQ(ncclAllReduce(f16.data(), f16.data(), kN, ncclFloat16, ncclMax, comm_, nullptr),
            ncclSuccess);
  const int rank_sum = size_ * (size_ - 1) / 2;
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(f32[i], static_cast<float>(rank_sum + size_ * i)) << i;
    EXPECT_EQ(__bfloat162float(bf16[i]), static_cast<float>(rank_sum) / size_ + i) << i;
    EXPECT_EQ(f16[i], f16_of[std::min(size_ - 1, 4)]) << i;
  }
}

TEST_F(NcclEmulationTest, ReduceScatterGivesEachRankItsChunkOfTheSum) {
  constexpr int kChunk = 3;
  DeviceArray<int32_t> send(kChunk * size_, "send");
  DeviceArray<int32_t> recv(kChunk, "recv");
  for (int i = 0; i < kChunk * size_; ++i) send[i] = 100 * rank_ + i;
  ASSERT_EQ(ncclReduceScatter(send.data(), recv.data(), kChunk, ncclInt32, ncclSum, comm_, nullptr),
            ncclSuccess);
  for (int j = 0; j < kChunk; ++j) {
    EXPECT_EQ(recv[j], 100 * size_ * (size_ - 1) / 2 + size_ * (rank_ * kChunk + j)) << j;
  }
}

TEST_F(NcclEmulationTest, AllGatherInPlaceAndBroadcastFromTheLastRank) {
  constexpr int kChunk = 4;
  DeviceArray<uint8_t> all(kChunk * size_, "all");
  for (int j = 0; j < kChunk; ++j) all[rank_ * kChunk + j] = static_cast<uint8_t>(10 * rank_ + j);
  ASSERT_EQ(
      ncclAllGather(all.data() + rank_ * kChunk, all.data(), kChunk, ncclUint8, comm_, nullptr),
      ncclSuccess);
  for (int r = 0; r < size_; ++r) {
    for (int j = 0; j < kChunk; ++j) EXPECT_EQ(all[r * kChunk + j], 10 * r + j);
  }
  DeviceArray<double> value(1, "value");
  value[0] = rank_;
  ASSERT_EQ(ncclBroadcast(value.data(), value.data(), 1, ncclFloat64, size_ - 1, comm_, nullptr),
            ncclSuccess);
  EXPECT_EQ(value[0], size_ - 1);
}

TEST_F(NcclEmulationTest, SendAndRecvAroundARing) {
  DeviceArray<int64_t> out(2, "out");
  DeviceArray<int64_t> in(2, "in");
  out[0] = rank_;
  out[1] = -rank_;
  const int next = (rank_ + 1) % size_, previous = (rank_ + size_ - 1) % size_;
  // Even ranks send first, odd ones receive first: blocking sends that pair up.
  if (rank_ % 2 == 0) {
    ASSERT_EQ(ncclSend(out.data(), 2, ncclInt64, next, comm_, nullptr), ncclSuccess);
    ASSERT_EQ(ncclRecv(in.data(), 2, ncclInt64, previous, comm_, nullptr), ncclSuccess);
  } else {
    ASSERT_EQ(ncclRecv(in.data(), 2, ncclInt64, previous, comm_, nullptr), ncclSuccess);
    ASSERT_EQ(ncclSend(out.data(), 2, ncclInt64, next, comm_, nullptr), ncclSuccess);
  }
  EXPECT_EQ(in[0], previous);
  EXPECT_EQ(in[1], -previous);
}

TEST_F(NcclEmulationTest, SplitByParityReducesWithinEachHalf) {
  ncclComm_t half = nullptr;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  ASSERT_EQ(ncclCommSplit(comm_, rank_ % 2, rank_, &half, &config), ncclSuccess);
  ASSERT_NE(half, nullptr);
  int rank = -1, count = -1;
  ASSERT_EQ(ncclCommUserRank(half, &rank), ncclSuccess);
  ASSERT_EQ(ncclCommCount(half, &count), ncclSuccess);
  EXPECT_EQ(rank, rank_ / 2);
  EXPECT_EQ(count, (size_ - rank_ % 2 + 1) / 2);
  DeviceArray<float> x(1, "x");
  x[0] = static_cast<float>(rank_);
  ASSERT_EQ(ncclAllReduce(x.data(), x.data(), 1, ncclFloat32, ncclSum, half, nullptr), ncclSuccess);
  float want = 0;
  for (int r = rank_ % 2; r < size_; r += 2) want += static_cast<float>(r);
  EXPECT_EQ(x[0], want);
  EXPECT_EQ(ncclCommDestroy(half), ncclSuccess);

  ncclComm_t none = comm_;
  ASSERT_EQ(ncclCommSplit(comm_, NCCL_SPLIT_NOCOLOR, rank_, &none, &config), ncclSuccess);
  EXPECT_EQ(none, nullptr);
}

// What the library's polling must handle (collectives/nccl/nccl_comm.cc): set-up, the first
// call and teardown answer ncclInProgress, and a split writes its child only once a query of
// the parent's state finds it done (NCCL 2.28).
TEST_F(NcclEmulationTest, ANonBlockingCommunicatorAnswersInProgressWhereNcclMay) {
  ncclUniqueId id{};
  if (rank_ == 0) {
    ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  }
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitRankConfig(&comm, size_, id, rank_, &config), ncclInProgress);
  int in_progress = 0;
  EXPECT_EQ(PollState(comm, in_progress), ncclSuccess);
  EXPECT_GT(in_progress, 0);

  DeviceArray<float> x(1, "x");
  x[0] = 1.0f;
  ASSERT_EQ(ncclAllReduce(x.data(), x.data(), 1, ncclFloat32, ncclSum, comm, nullptr),
            ncclInProgress);
  EXPECT_EQ(PollState(comm, in_progress), ncclSuccess);
  EXPECT_GT(in_progress, 0);
  EXPECT_EQ(x[0], static_cast<float>(size_));
  ASSERT_EQ(ncclAllReduce(x.data(), x.data(), 1, ncclFloat32, ncclSum, comm, nullptr),
            ncclSuccess);  // Only the first call waits for the connections.

  ncclComm_t half = nullptr;
  ASSERT_EQ(ncclCommSplit(comm, rank_ % 2, rank_, &half, &config), ncclSuccess);
  EXPECT_EQ(half, nullptr) << "written only once the parent's state is complete";
  EXPECT_EQ(PollState(comm, in_progress), ncclSuccess);
  EXPECT_GT(in_progress, 0);
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(PollState(half, in_progress), ncclSuccess);  // The child sets itself up too.
  EXPECT_GT(in_progress, 0);
  int count = -1;
  ASSERT_EQ(ncclCommCount(half, &count), ncclSuccess);
  EXPECT_EQ(count, (size_ - rank_ % 2 + 1) / 2);

  for (ncclComm_t c : {half, comm}) {
    ASSERT_EQ(ncclCommFinalize(c), ncclInProgress);
    EXPECT_EQ(PollState(c, in_progress), ncclSuccess);
    EXPECT_EQ(ncclCommDestroy(c), ncclSuccess);
  }
}

// Refused before any rank communicates, so every rank refuses alike without waiting.
TEST_F(NcclEmulationTest, ADestroyedStreamIsRefused) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  DeviceArray<float> x(4, "x");
  EXPECT_EQ(ncclAllReduce(x.data(), x.data(), 4, ncclFloat32, ncclSum, comm_, stream),
            ncclInvalidArgument);
  EXPECT_NE(std::strstr(ncclGetLastError(comm_), "a destroyed or unknown stream"), nullptr)
      << ncclGetLastError(comm_);
}

TEST_F(NcclEmulationTest, HostMemoryAndSelfSendsAreRefused) {
  float host = 1.0f;
  EXPECT_EQ(ncclAllReduce(&host, &host, 1, ncclFloat32, ncclSum, comm_, nullptr),
            ncclInvalidArgument);
  EXPECT_NE(std::strstr(ncclGetLastError(comm_), "not within one device allocation"), nullptr)
      << ncclGetLastError(comm_);
  DeviceArray<float> x(1, "x");
  EXPECT_EQ(ncclSend(x.data(), 1, ncclFloat32, rank_, comm_, nullptr), ncclInvalidArgument);
}

}  // namespace
}  // namespace usine::testing::cuda_emulator
