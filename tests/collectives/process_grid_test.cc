// Runs under mpirun at 2 and 4 ranks.
#include "collectives/process_grid.h"

#include "gtest/gtest.h"

#include "collectives/mpi/mpi_communicator.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

class ProcessGridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto world = MpiCommunicator::Create(MPI_COMM_WORLD, "world");
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = std::move(*world);
  }
  // The sum of the world ranks in this rank's group along `axis`.
  int64_t SumOfWorldRanks(const ProcessGrid& grid, ParallelAxis axis) {
    Tensor t = testing::MakeTensor<int64_t>(Device::Cpu(), {1}, {world_->rank()}).value();
    EXPECT_OK(grid.comm(axis).AllReduce(t, ReduceOp::kSum));
    return testing::ReadTensor<int64_t>(t).value()[0];
  }
  std::unique_ptr<MpiCommunicator> world_;
};

TEST_F(ProcessGridTest, TensorParallelGroupsAreAdjacentRanks) {
  const int rank = world_->rank(), size = world_->size();
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, /*tp_size=*/2));
  EXPECT_EQ(grid->size(ParallelAxis::kTensor), 2);
  EXPECT_EQ(grid->size(ParallelAxis::kData), size / 2);
  EXPECT_EQ(grid->rank(ParallelAxis::kTensor), rank % 2);
  EXPECT_EQ(grid->rank(ParallelAxis::kData), rank / 2);
  EXPECT_EQ(grid->comm(ParallelAxis::kTensor).name(), "tp");
  // TP group {2d, 2d + 1}; DP group {t, t + 2, t + 4, ...}.
  const int d = rank / 2, t = rank % 2;
  EXPECT_EQ(SumOfWorldRanks(*grid, ParallelAxis::kTensor), 4 * d + 1);
  int64_t dp_sum = 0;
  for (int r = t; r < size; r += 2) dp_sum += r;
  EXPECT_EQ(SumOfWorldRanks(*grid, ParallelAxis::kData), dp_sum);
  EXPECT_EQ(grid->DebugString(),
            absl::StrCat("dp ", size / 2, " x tp 2 (this rank: dp ", d, ", tp ", t, ")"));
}

TEST_F(ProcessGridTest, PureDataParallel) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, /*tp_size=*/1));
  EXPECT_EQ(grid->size(ParallelAxis::kTensor), 1);
  EXPECT_EQ(grid->size(ParallelAxis::kData), world_->size());
  EXPECT_EQ(grid->rank(ParallelAxis::kData), world_->rank());
}

TEST_F(ProcessGridTest, TensorParallelSizeMustDivideTheWorld) {
  EXPECT_TRUE(absl::IsInvalidArgument(ProcessGrid::Create(*world_, 3).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ProcessGrid::Create(*world_, 0).status()));
}

}  // namespace
}  // namespace usine
