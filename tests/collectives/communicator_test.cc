// The Communicator contract (collectives/communicator.h), on every backend, under mpirun at 2
// and 4 ranks: `Cpu` is the MPI backend; `Cuda` the NCCL backend over it, each rank on GPU
// local_rank % count (on a machine without several, the emulated twins run it: label emu).
// Inputs are collective_values.h's, so every element of every output is known exactly.
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/kernels/copy.h"
#include "tests/collectives/collective_values.h"
#include "tests/testing/communicator_on_device.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::At;
using testing::Filled;
using ::testing::HasSubstr;
using testing::kReducible;
using testing::Reduce;
using testing::ToHost;
using testing::Value;

const int64_t kSizes[] = {0, 1, 1001};

class CommunicatorTest : public testing::MultiRankDeviceTest {};

TEST_P(CommunicatorTest, AllReduceEveryOpDTypeSizeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kReducible) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
      if (op == ReduceOp::kAvg && !IsFloatingPoint(dtype)) continue;
      for (int64_t n : kSizes) {
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", ReduceOpName(op), " n=", n,
                                    in_place ? " in place" : ""));
          ASSERT_OK_AND_ASSIGN(Tensor send,
                               Filled(here(), dtype, n, [&](int64_t i) { return Value(rank, i); }));
          ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(here(), dtype, n, [](int64_t) { return 99; }));
          ASSERT_OK(world_->AllReduce(send, in_place ? send : recv, op));
          ASSERT_OK_AND_ASSIGN(Tensor out, ToHost(in_place ? send : recv));
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(At(out, i), Reduce(op, size, [&](int r) { return Value(r, i); })) << i;
          }
        }
      }
    }
  }
}

TEST_P(CommunicatorTest, ReduceScatterEveryDTypeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kReducible) {
    for (int64_t n : kSizes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " n=", n, in_place ? " in place" : ""));
        ASSERT_OK_AND_ASSIGN(Tensor send, Filled(here(), dtype, n * size,
                                                 [&](int64_t j) { return Value(rank, j); }));
        ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(here(), dtype, n, [](int64_t) { return 99; }));
        ASSERT_OK_AND_ASSIGN(Tensor own_chunk, send.View(rank * n, {n}));
        ASSERT_OK(world_->ReduceScatter(send, in_place ? own_chunk : recv, ReduceOp::kSum));
        ASSERT_OK_AND_ASSIGN(Tensor out, ToHost(in_place ? own_chunk : recv));
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(At(out, i),
                    Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, rank * n + i); }));
        }
      }
    }
  }
}

TEST_P(CommunicatorTest, AllGatherEveryDTypeInAndOutOfPlace) {
  const int rank = world_->rank(), size = world_->size();
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " n=", n, in_place ? " in place" : ""));
        ASSERT_OK_AND_ASSIGN(Tensor recv,
                             Filled(here(), dtype, n * size, [](int64_t) { return 0; }));
        ASSERT_OK_AND_ASSIGN(Tensor mine,
                             Filled(here(), dtype, n, [&](int64_t i) { return Value(rank, i); }));
        ASSERT_OK_AND_ASSIGN(Tensor own_chunk, recv.View(rank * n, {n}));
        if (in_place) ASSERT_OK(Copy(mine, own_chunk));
        ASSERT_OK(world_->AllGather(in_place ? own_chunk : mine, recv));
        ASSERT_OK_AND_ASSIGN(Tensor out, ToHost(recv));
        for (int r = 0; r < size; ++r) {
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(At(out, r * n + i), Value(r, i));
        }
      }
    }
  }
}

TEST_P(CommunicatorTest, BroadcastEveryDTypeFromTheLastRank) {
  const int rank = world_->rank(), root = world_->size() - 1;
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      ASSERT_OK_AND_ASSIGN(Tensor t, Filled(here(), dtype, n, [&](int64_t i) {
                             return rank == root ? Value(root, i) : 0;
                           }));
      ASSERT_OK(world_->Broadcast(t, root));
      ASSERT_OK_AND_ASSIGN(Tensor out, ToHost(t));
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(At(out, i), Value(root, i)) << DTypeName(dtype);
    }
  }
}

// Even ranks send first and odd ranks receive first: the order the contract asks of a pair
// that exchanges (a Send may wait for its matching Recv).
TEST_P(CommunicatorTest, SendAndRecvAroundARing) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(Tensor out,
                       Filled(here(), DType::kI64, 333, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK_AND_ASSIGN(Tensor in, Tensor::Empty({333}, DType::kI64, here()));
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  if (rank % 2 == 0) {
    ASSERT_OK(world_->Send(out, next));
    ASSERT_OK(world_->Recv(in, prev));
  } else {
    ASSERT_OK(world_->Recv(in, prev));
    ASSERT_OK(world_->Send(out, next));
  }
  ASSERT_OK_AND_ASSIGN(Tensor got, ToHost(in));
  for (int64_t i = 0; i < 333; ++i) ASSERT_EQ(At(got, i), Value(prev, i));
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Send(out, rank)));
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Recv(in, size)));
}

TEST_P(CommunicatorTest, SplitGroupsRanksByColorOrderedByKeyAndSplitsAgain) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(auto half, world_->Split(rank % 2, -rank, "half"));
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(half->device(), here());
  // key = -rank: the highest world rank of the group comes first.
  int members = 0, position = 0;
  for (int r = rank % 2; r < size; r += 2) {
    ++members;
    if (r > rank) ++position;
  }
  EXPECT_EQ(half->size(), members);
  EXPECT_EQ(half->rank(), position);
  ASSERT_OK_AND_ASSIGN(Tensor t, Filled(here(), DType::kI32, 1, [&](int64_t) { return rank; }));
  ASSERT_OK(half->AllReduce(t, ReduceOp::kSum));
  int want = 0;
  for (int r = rank % 2; r < size; r += 2) want += r;
  ASSERT_OK_AND_ASSIGN(Tensor got, ToHost(t));
  EXPECT_EQ(At(got, 0), want);
  // A split of the split: each rank alone.
  ASSERT_OK_AND_ASSIGN(auto alone, half->Split(half->rank(), 0, "alone"));
  EXPECT_EQ(alone->size(), 1);
  ASSERT_OK(alone->AllReduce(t, ReduceOp::kSum));
  ASSERT_OK_AND_ASSIGN(got, ToHost(t));
  EXPECT_EQ(At(got, 0), want);
  EXPECT_TRUE(absl::IsInvalidArgument(world_->Split(-1, 0, "bad").status()));
}

// Stream-ordered calls (nccl/: they return once enqueued) follow each other on their stream, a
// scratch tensor dropped at once included (the communicator holds it until its call has run);
// the host sees the last result once it has synchronised with the stream. Each all-reduce sums
// what the one before it left, so a call that read its input early fails.
TEST_P(CommunicatorTest, StreamOrderedCallsFollowEachOtherOnTheirStream) {
  const int rank = world_->rank(), size = world_->size();
  constexpr int64_t kN = 1001;
  ASSERT_OK_AND_ASSIGN(const Stream stream, Stream::Create(here()));
  const CollectiveOptions ordered{.stream = &stream, .stream_ordered = true};
  ASSERT_OK_AND_ASSIGN(Tensor t,
                       Filled(here(), DType::kI64, kN, [&](int64_t i) { return Value(rank, i); }));
  for (int round = 0; round < 3; ++round) ASSERT_OK(world_->AllReduce(t, ReduceOp::kSum, ordered));
  {
    ASSERT_OK_AND_ASSIGN(Tensor scratch,
                         Filled(here(), DType::kI64, kN, [](int64_t) { return 1; }));
    ASSERT_OK(world_->AllReduce(scratch, ReduceOp::kSum, ordered));
  }
  ASSERT_OK_AND_ASSIGN(Tensor all, Tensor::Empty({kN * size}, DType::kI64, here()));
  ASSERT_OK(world_->AllGather(t, all, ordered));
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(Tensor got, ToHost(all));
  for (int r = 0; r < size; ++r) {
    for (int64_t i = 0; i < kN; ++i) {
      ASSERT_EQ(At(got, r * kN + i),
                size * size * Reduce(ReduceOp::kSum, size, [&](int q) { return Value(q, i); }))
          << "rank " << r << " element " << i;
    }
  }
}

// Host tensors on a GPU communicator are its host twin's calls, in the same order on every rank.
TEST_P(CommunicatorTest, HostTensorsAndBarriersInterleaveWithDeviceCalls) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(Tensor on_device,
                       Filled(here(), DType::kF32, 64, [&](int64_t i) { return Value(rank, i); }));
  ASSERT_OK_AND_ASSIGN(Tensor on_host,
                       Filled(DType::kI64, 5, [&](int64_t i) { return Value(rank, i + 1); }));
  ASSERT_OK(world_->AllReduce(on_device, ReduceOp::kMax));
  ASSERT_OK(world_->Barrier());
  ASSERT_OK(world_->AllReduce(on_host, ReduceOp::kSum));
  ASSERT_OK(world_->Barrier());
  ASSERT_OK_AND_ASSIGN(Tensor got, ToHost(on_device));
  for (int64_t i = 0; i < 64; ++i) {
    ASSERT_EQ(At(got, i), Reduce(ReduceOp::kMax, size, [&](int r) { return Value(r, i); }));
  }
  for (int64_t i = 0; i < 5; ++i) {
    ASSERT_EQ(At(on_host, i), Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i + 1); }));
  }
}

TEST_P(CommunicatorTest, ArgumentErrorsNameTheCall) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4}, DType::kF32, here()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({5}, DType::kF32, here()));
  ASSERT_OK_AND_ASSIGN(Tensor i, Tensor::Empty({4}, DType::kI32, here()));
  ASSERT_OK_AND_ASSIGN(Tensor u, Tensor::Empty({4}, DType::kU8, here()));
  EXPECT_THAT(std::string(world_->AllReduce(a, b, ReduceOp::kSum).message()),
              HasSubstr("differ in element count"));
  EXPECT_THAT(std::string(world_->AllReduce(i, ReduceOp::kAvg).message()),
              HasSubstr("avg needs a floating dtype"));
  EXPECT_THAT(std::string(world_->AllReduce(u, ReduceOp::kSum).message()),
              HasSubstr("reductions take f32, bf16, f16, i32, i64"));
  EXPECT_THAT(std::string(world_->AllGather(a, b).message()), HasSubstr("must hold"));
  EXPECT_THAT(std::string(world_->Broadcast(a, world_->size()).message()), HasSubstr("root"));
}

USINE_INSTANTIATE_DEVICE_TESTS(CommunicatorTest);

}  // namespace
}  // namespace usine
