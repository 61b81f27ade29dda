// Runs under mpirun at 2 and 4 ranks. Rank r's inputs are Value(r, i), small integers, so
// every output element is known exactly, also in bf16 and f16.
#include "collectives/mpi/mpi_communicator.h"

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

double Value(int rank, int64_t i) { return static_cast<double>((i * 7 + rank * 3) % 17) - 8.0; }

// Elements of `dtype` with the given values (exact for the small integers used here).
absl::StatusOr<Tensor> Filled(DType dtype, int64_t n, const std::function<double(int64_t)>& f) {
  ASSIGN_OR_RETURN(Tensor t, Tensor::Empty({n}, dtype));
  for (int64_t i = 0; i < n; ++i) {
    const double v = f(i);
    switch (dtype) {
      case DType::kF32:
        static_cast<float*>(t.raw_data())[i] = static_cast<float>(v);
        break;
      case DType::kBF16:
        static_cast<BFloat16*>(t.raw_data())[i] = BFloat16::FromFloat(static_cast<float>(v));
        break;
      case DType::kF16:
        static_cast<Float16*>(t.raw_data())[i] = Float16::FromFloat(static_cast<float>(v));
        break;
      case DType::kI32:
        static_cast<int32_t*>(t.raw_data())[i] = static_cast<int32_t>(v);
        break;
      case DType::kI64:
        static_cast<int64_t*>(t.raw_data())[i] = static_cast<int64_t>(v);
        break;
      case DType::kU16:
        static_cast<uint16_t*>(t.raw_data())[i] = static_cast<uint16_t>(v + 100);
        break;
      case DType::kU8:
        static_cast<uint8_t*>(t.raw_data())[i] = static_cast<uint8_t>(v + 100);
        break;
      case DType::kF64:
        static_cast<double*>(t.raw_data())[i] = v;
        break;
    }
  }
  return t;
}

double At(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32:
      return static_cast<const float*>(t.raw_data())[i];
    case DType::kBF16:
      return static_cast<const BFloat16*>(t.raw_data())[i].ToFloat();
    case DType::kF16:
      return static_cast<const Float16*>(t.raw_data())[i].ToFloat();
    case DType::kI32:
      return static_cast<const int32_t*>(t.raw_data())[i];
    case DType::kI64:
      return static_cast<double>(static_cast<const int64_t*>(t.raw_data())[i]);
    case DType::kU16:
      return static_cast<const uint16_t*>(t.raw_data())[i] - 100.0;
    case DType::kU8:
      return static_cast<const uint8_t*>(t.raw_data())[i] - 100.0;
    case DType::kF64:
      return static_cast<const double*>(t.raw_data())[i];
  }
  return 0;
}

double Reduce(ReduceOp op, int size, const std::function<double(int)>& v) {
  double acc = v(0);
  for (int r = 1; r < size; ++r) {
    const double x = v(r);
    acc = op == ReduceOp::kMax   ? std::max(acc, x)
          : op == ReduceOp::kMin ? std::min(acc, x)
                                 : acc + x;
  }
  return op == ReduceOp::kAvg ? acc / size : acc;
}

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

const DType kReducible[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64};
const int64_t kSizes[] = {0, 1, 1001};

TEST_F(MpiCommunicatorTest, AllReduceEveryOpDTypeSizeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kReducible) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
      if (op == ReduceOp::kAvg && !IsFloatingPoint(dtype)) continue;
      for (int64_t n : kSizes) {
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", ReduceOpName(op), " n=", n,
                                    in_place ? " in place" : ""));
          ASSERT_OK_AND_ASSIGN(Tensor send,
                               Filled(dtype, n, [&](int64_t i) { return Value(rank, i); }));
          ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(dtype, n, [](int64_t) { return 99; }));
          ASSERT_OK(world_->AllReduce(send, in_place ? send : recv, op));
          const Tensor& out = in_place ? send : recv;
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(At(out, i), Reduce(op, size, [&](int r) { return Value(r, i); })) << i;
          }
        }
      }
    }
  }
}

TEST_F(MpiCommunicatorTest, ReduceScatterEveryDTypeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kReducible) {
    for (int64_t n : kSizes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " n=", n, in_place ? " in place" : ""));
        ASSERT_OK_AND_ASSIGN(Tensor send,
                             Filled(dtype, n * size, [&](int64_t j) { return Value(rank, j); }));
        ASSERT_OK_AND_ASSIGN(Tensor recv, Tensor::Empty({n}, dtype));
        ASSERT_OK_AND_ASSIGN(Tensor own_chunk, send.View(rank * n, {n}));
        const Tensor& out = in_place ? own_chunk : recv;
        ASSERT_OK(world_->ReduceScatter(send, out, ReduceOp::kSum));
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(At(out, i),
                    Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, rank * n + i); }));
        }
      }
    }
  }
}

TEST_F(MpiCommunicatorTest, AllGatherEveryDTypeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " n=", n, in_place ? " in place" : ""));
        ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(dtype, n * size, [](int64_t) { return 0; }));
        ASSERT_OK_AND_ASSIGN(Tensor mine,
                             Filled(dtype, n, [&](int64_t i) { return Value(rank, i); }));
        ASSERT_OK_AND_ASSIGN(Tensor own_chunk, recv.View(rank * n, {n}));
        if (in_place && n > 0) std::memcpy(own_chunk.raw_data(), mine.raw_data(), mine.nbytes());
        ASSERT_OK(world_->AllGather(in_place ? own_chunk : mine, recv));
        for (int r = 0; r < size; ++r) {
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(At(recv, r * n + i), Value(r, i));
        }
      }
    }
  }
}

TEST_F(MpiCommunicatorTest, BroadcastEveryDTypeFromTheLastRank) {
  const int rank = world_->rank(), root = world_->size() - 1;
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      ASSERT_OK_AND_ASSIGN(
          Tensor t, Filled(dtype, n, [&](int64_t i) { return rank == root ? Value(root, i) : 0; }));
      ASSERT_OK(world_->Broadcast(t, root));
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(At(t, i), Value(root, i)) << DTypeName(dtype);
    }
  }
}

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

TEST_F(MpiCommunicatorTest, SendAndRecvAroundARing) {
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
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Send(out, rank)));
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Recv(in, size)));
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

TEST_F(MpiCommunicatorTest, SplitGroupsRanksByColorOrderedByKey) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(auto half, world_->Split(rank % 2, -rank, "half"));
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(half->size(), (size - rank % 2 + 1) / 2);
  // key = -rank: the highest world rank of the group comes first.
  int members = 0, position = 0;
  for (int r = rank % 2; r < size; r += 2) {
    ++members;
    if (r > rank) ++position;
  }
  EXPECT_EQ(half->size(), members);
  EXPECT_EQ(half->rank(), position);
  ASSERT_OK_AND_ASSIGN(Tensor t, Filled(DType::kI32, 1, [&](int64_t) { return rank; }));
  ASSERT_OK(half->AllReduce(t, ReduceOp::kSum));
  int want = 0;
  for (int r = rank % 2; r < size; r += 2) want += r;
  EXPECT_EQ(At(t, 0), want);
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Split(-1, 0, "bad").status()));
}

TEST_F(MpiCommunicatorTest, ArgumentErrorsNameTheCall) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({5}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor i, Tensor::Empty({4}, DType::kI32));
  ASSERT_OK_AND_ASSIGN(Tensor u, Tensor::Empty({4}, DType::kU8));
  EXPECT_THAT(std::string(world_->AllReduce(a, b, ReduceOp::kSum).message()),
              HasSubstr("differ in element count"));
  EXPECT_THAT(std::string(world_->AllReduce(i, ReduceOp::kAvg).message()),
              HasSubstr("avg needs a floating dtype"));
  EXPECT_THAT(std::string(world_->AllReduce(u, ReduceOp::kSum).message()),
              HasSubstr("reductions take f32, bf16, f16, i32, i64"));
  EXPECT_THAT(std::string(world_->AllGather(a, b).message()), HasSubstr("must hold"));
  EXPECT_THAT(std::string(world_->Broadcast(a, world_->size()).message()), HasSubstr("root"));
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
