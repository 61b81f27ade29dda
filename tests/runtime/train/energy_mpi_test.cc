// Energy over real ranks on one machine: which rank reads what, and the sum of the shares,
// which is "n/a" when one assigned rank cannot read its source.
#include <memory>

#include <mpi.h>

#include "gtest/gtest.h"

#include "collectives/mpi/mpi_communicator.h"
#include "runtime/train/energy.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

class EnergyMpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto world = MpiCommunicator::Create(MPI_COMM_WORLD, "world");
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = std::move(*world);
  }
  std::unique_ptr<MpiCommunicator> world_;
};

TEST_F(EnergyMpiTest, OneRankPerMachineReadsTheCpuAndOnePerGpuItsGpu) {
  const int rank = world_->rank();
  ASSERT_OK_AND_ASSIGN(EnergyMeterOptions own_gpus,
                       AssignEnergySources(*world_, Device::Cuda(rank)));
  EXPECT_EQ(own_gpus.cpu_packages, rank == 0);  // One machine: its lowest rank.
  EXPECT_EQ(own_gpus.gpu, Device::Cuda(rank));  // Every rank has a GPU of its own.
  ASSERT_OK_AND_ASSIGN(EnergyMeterOptions shared_gpu,
                       AssignEnergySources(*world_, Device::Cuda(0)));
  EXPECT_EQ(shared_gpu.gpu.has_value(), rank == 0);  // One GPU: its lowest rank.
  ASSERT_OK_AND_ASSIGN(EnergyMeterOptions cpu_only, AssignEnergySources(*world_, Device::Cpu()));
  EXPECT_FALSE(cpu_only.gpu.has_value());
  EXPECT_EQ(cpu_only.cpu_packages, rank == 0);
}

TEST_F(EnergyMpiTest, SharesAddUpExactly) {
  const int rank = world_->rank();
  // Every rank's GPU: rank + 0.25 J; the CPU read by rank 0 only: 40.5 J.
  const RankEnergy mine{{true, rank + 0.25}, {rank == 0, rank == 0 ? 40.5 : 0.0}};
  ASSERT_OK_AND_ASSIGN(EnergyReading sum, SumEnergyOverRanks(*world_, mine));
  const int n = world_->size();
  EXPECT_DOUBLE_EQ(*sum.gpu_joules, n * (n - 1) / 2.0 + 0.25 * n);
  EXPECT_DOUBLE_EQ(*sum.cpu_joules, 40.5);
}

TEST_F(EnergyMpiTest, OneUnreadableAssignedSourceMakesTheJobsUnavailable) {
  const int rank = world_->rank();
  const int last = world_->size() - 1;
  const RankEnergy mine{{true, rank == last ? std::nullopt : std::optional<double>(1.0)},
                        {rank == 0, 2.0}};
  ASSERT_OK_AND_ASSIGN(EnergyReading sum, SumEnergyOverRanks(*world_, mine));
  EXPECT_FALSE(sum.gpu_joules.has_value());
  EXPECT_DOUBLE_EQ(*sum.cpu_joules, 2.0);
}

}  // namespace
}  // namespace usine
