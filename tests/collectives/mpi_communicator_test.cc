// What the MPI backend does beyond the Communicator contract (communicator_test.cc checks that
// on every backend): messages past the transport's limits, reductions in pieces, calls that
// run behind the caller, the watchdog. Runs under mpirun at 2 and 4 ranks, with the inputs of
// collective_values.h.
#include "collectives/mpi/mpi_communicator.h"

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/collectives/collective_values.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::At;
using testing::Filled;
using ::testing::HasSubstr;
using testing::Reduce;
using testing::Value;

class MpiCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MpiCommunicator>> comm =
        MpiCommunicator::Create(MPI_COMM_WORLD, "world", {.timeout = absl::Seconds(60)});
    ASSERT_TRUE(comm.ok()) << comm.status();
    world_ = std::move(*comm);
  }
  std::unique_ptr<MpiCommunicator> world_;
};

// 64 MiB and more per call: the sizes where the transport splits messages.
TEST_F(MpiCommunicatorTest, LargeTensorsAreReducedGatheredAndScatteredExactly) {
  const int rank = world_->rank(), size = world_->size();
  const int64_t n = int64_t{16} << 20;  // 16 Mi floats = 64 MiB.
  ASSERT_OK_AND_ASSIGN(Tensor big,
                       Filled(DType::kF32, n, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK(world_->AllReduce(big, ReduceOp::kSum));
  for (int64_t i = 0; i < n; i += 1) {
    if (At(big, i) != Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); })) {
      FAIL() << "allreduce element " << i;
    }
  }
  const int64_t chunk = n / size;
  ASSERT_OK_AND_ASSIGN(Tensor scattered, Tensor::Empty({chunk}, DType::kF32));
  ASSERT_OK(world_->ReduceScatter(big, scattered, ReduceOp::kMax));
  ASSERT_OK_AND_ASSIGN(Tensor gathered, Tensor::Empty({n}, DType::kF32));
  ASSERT_OK(world_->AllGather(scattered, gathered));
  for (int64_t i = 0; i < n; ++i) {  // max over identical sums is the sum itself.
    if (At(gathered, i) != Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); })) {
      FAIL() << "reduce-scatter + all-gather element " << i;
    }
  }
  // 64 MiB of bf16, out of place (widened to 128 MiB of f32 and back), and of bytes.
  const int64_t n16 = int64_t{32} << 20;
  ASSERT_OK_AND_ASSIGN(Tensor half,
                       Filled(DType::kBF16, n16, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK_AND_ASSIGN(Tensor half_sum, Tensor::Empty({n16}, DType::kBF16));
  ASSERT_OK(world_->AllReduce(half, half_sum, ReduceOp::kSum));
  for (int64_t i = 0; i < n16; ++i) {
    if (At(half_sum, i) != Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); })) {
      FAIL() << "bf16 allreduce element " << i;
    }
  }
  const int64_t bytes = int64_t{64} << 20;
  ASSERT_OK_AND_ASSIGN(Tensor raw, Filled(DType::kU8, bytes,
                                          [&](int64_t i) { return rank == 0 ? Value(0, i) : 0; }));
  ASSERT_OK(world_->Broadcast(raw, 0));
  for (int64_t i = 0; i < bytes; ++i) {
    if (At(raw, i) != Value(0, i)) FAIL() << "broadcast byte " << i;
  }
}

// Large reductions run in pieces; 1 KiB pieces put many boundaries in small tensors.
TEST_F(MpiCommunicatorTest, ChunkedReductionsAreExactAcrossChunkBoundaries) {
  ASSERT_OK_AND_ASSIGN(
      auto chunked, MpiCommunicator::Create(MPI_COMM_WORLD, "chunked", {}, {.chunk_bytes = 1024}));
  const int rank = chunked->rank(), size = chunked->size();
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kI64}) {
    for (int64_t n : {255, 256, 257, 1001}) {
      ASSERT_OK_AND_ASSIGN(Tensor send,
                           Filled(dtype, n, [&](int64_t i) { return Value(rank, i); }));
      ASSERT_OK_AND_ASSIGN(Tensor recv, Tensor::Empty({n}, dtype));
      ASSERT_OK(chunked->AllReduce(send, recv, ReduceOp::kSum));
      ASSERT_OK(chunked->AllReduce(send, ReduceOp::kMax));  // In place.
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(At(recv, i), Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); }))
            << DTypeName(dtype) << " n=" << n << " i=" << i;
        ASSERT_EQ(At(send, i), Reduce(ReduceOp::kMax, size, [&](int r) { return Value(r, i); }));
      }
      ASSERT_OK_AND_ASSIGN(Tensor whole,
                           Filled(dtype, n * size, [&](int64_t j) { return Value(rank, j); }));
      ASSERT_OK_AND_ASSIGN(Tensor mine, Tensor::Empty({n}, dtype));
      ASSERT_OK(chunked->ReduceScatter(whole, mine, ReduceOp::kSum));
      ASSERT_OK_AND_ASSIGN(Tensor own_chunk, whole.View(rank * n, {n}));
      ASSERT_OK(chunked->ReduceScatter(whole, own_chunk, ReduceOp::kMin));  // In place.
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(At(mine, i),
                  Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, rank * n + i); }))
            << DTypeName(dtype) << " n=" << n << " i=" << i;
        ASSERT_EQ(At(own_chunk, i),
                  Reduce(ReduceOp::kMin, size, [&](int r) { return Value(r, rank * n + i); }));
      }
    }
  }
  EXPECT_TRUE(absl::IsInvalidArgument(
      MpiCommunicator::Create(MPI_COMM_WORLD, "tiny", {}, {.chunk_bytes = 16}).status()));
}

// Non-blocking point-to-point: every rank may post its receive before its send.
TEST_F(MpiCommunicatorTest, AsyncRecvThenSendAroundARing) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(Tensor out,
                       Filled(DType::kI64, 333, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK_AND_ASSIGN(Tensor in, Tensor::Empty({333}, DType::kI64));
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  ASSERT_OK_AND_ASSIGN(auto recv, world_->RecvAsync(in, prev));
  ASSERT_OK_AND_ASSIGN(auto send, world_->SendAsync(out, next));
  ASSERT_OK(send->Wait());
  ASSERT_OK(recv->Wait());
  for (int64_t i = 0; i < 333; ++i) ASSERT_EQ(At(in, i), Value(prev, i));
}

TEST_F(MpiCommunicatorTest, AsyncCallsOverlapTheCallerAndCompleteInOrder) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(Tensor a,
                       Filled(DType::kF32, 4096, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK_AND_ASSIGN(Tensor b,
                       Filled(DType::kF32, 4096, [&](int64_t i) { return Value(rank, i + 1); }));
  if (rank == size - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto first, world_->AllReduceAsync(a, a, ReduceOp::kSum));
  ASSERT_OK_AND_ASSIGN(auto second, world_->AllReduceAsync(b, b, ReduceOp::kMax));
  const auto issued = std::chrono::steady_clock::now();
  if (rank == 0) {
    // The last rank is still asleep: the calls cannot have completed, and issuing did not wait.
    ASSERT_OK_AND_ASSIGN(bool done, second->Test());
    EXPECT_FALSE(done);
    EXPECT_LT(issued - start, std::chrono::milliseconds(100));
  }
  ASSERT_OK(second->Wait());
  ASSERT_OK_AND_ASSIGN(bool first_done, first->Test());
  EXPECT_TRUE(first_done) << "calls complete in issue order";
  for (int64_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(At(a, i), Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); }));
    ASSERT_EQ(At(b, i), Reduce(ReduceOp::kMax, size, [&](int r) { return Value(r, i + 1); }));
  }
  // A blocking call after async ones waits for them, keeping the order on every rank.
  ASSERT_OK_AND_ASSIGN(auto third, world_->AllReduceAsync(a, a, ReduceOp::kMin));
  ASSERT_OK(world_->Barrier());
  ASSERT_OK_AND_ASSIGN(bool third_done, third->Test());
  EXPECT_TRUE(third_done);
}

// A rank that arrives after the deadline: the others' watchdog names it. The expiry action
// records instead of ending the process, and the late rank then completes the call.
TEST_F(MpiCommunicatorTest, WatchdogNamesTheRankThatDidNotArrive) {
  const int rank = world_->rank(), late = world_->size() - 1;
  std::mutex mu;
  std::vector<std::string> messages;
  Watchdog::Get().set_report_grace(absl::Milliseconds(700));
  Watchdog::Get().set_expiry_action([&](const std::string& message, ArrivalProbe*) {
    std::lock_guard<std::mutex> lock(mu);
    messages.push_back(message);
  });
  ASSERT_OK(world_->Barrier());
  ASSERT_OK_AND_ASSIGN(Tensor t, Filled(DType::kF32, 8, [&](int64_t) { return 1; }));
  if (rank == late) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_OK(world_->AllReduce(t, ReduceOp::kSum, {.timeout = absl::Seconds(1)}));
  EXPECT_EQ(At(t, 0), world_->size());
  Watchdog::Get().ResetExpiryAction();
  Watchdog::Get().set_report_grace(absl::Seconds(3));
  std::lock_guard<std::mutex> lock(mu);
  if (rank == late) {
    EXPECT_TRUE(messages.empty());
    return;
  }
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_THAT(messages[0],
              HasSubstr("allreduce #2 on communicator 'world' (rank " + std::to_string(rank)));
  EXPECT_THAT(messages[0], HasSubstr("did not complete within 1s"));
  EXPECT_THAT(messages[0], HasSubstr("rank(s) " + std::to_string(late) + " did not arrive"));
}

}  // namespace
}  // namespace usine
