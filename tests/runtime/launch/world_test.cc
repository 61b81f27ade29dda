#include "runtime/launch/world.h"

#include <csignal>

#include <mpi.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using launch_internal::CheckWorldSize;
using launch_internal::DetectLauncher;
using ::testing::HasSubstr;

TEST(World, WithoutALauncherIsAWorldOfOneWithoutMpi) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  EXPECT_EQ(world->rank(), 0);
  EXPECT_EQ(world->size(), 1);
  EXPECT_EQ(world->local_rank(), 0);
  EXPECT_EQ(world->launcher(), Launcher::kNone);
  EXPECT_EQ(world->comm().backend(), "local");
  EXPECT_FALSE(world->hostname().empty());
  EXPECT_EQ(world->device().is_cuda(), CudaDeviceCount() > 0);
  int mpi_initialized = 1;
  MPI_Initialized(&mpi_initialized);
  EXPECT_EQ(mpi_initialized, 0) << "a world of one needs no MPI";
  ASSERT_OK_AND_ASSIGN(Tensor t, testing::MakeTensor<float>(Device::Cpu(), {3}, {1, 2, 3}));
  ASSERT_OK(world->comm().AllReduce(t, ReduceOp::kAvg));
  ASSERT_OK_AND_ASSIGN(std::vector<float> v, testing::ReadTensor<float>(t));
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3}));
}

TEST(World, OnlyOnePerProcess) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  EXPECT_TRUE(absl::IsFailedPrecondition(World::Init().status()));
}

TEST(World, StopSignalsAreRecordedNotFatal) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  EXPECT_EQ(World::StopSignal(), 0);
  std::raise(SIGUSR1);
  EXPECT_EQ(World::StopSignal(), SIGUSR1);
  std::raise(SIGTERM);
  EXPECT_EQ(World::StopSignal(), SIGTERM);
}

TEST(WorldLauncher, DetectsTheLauncherFromItsVariables) {
  EXPECT_EQ(DetectLauncher({}), Launcher::kNone);
  EXPECT_EQ(DetectLauncher({{"OMPI_COMM_WORLD_SIZE", "4"}}), Launcher::kOpenMpi);
  EXPECT_EQ(DetectLauncher({{"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_STEP_ID", "0"}}),
            Launcher::kSlurm);
  // The batch script of a job has SLURM variables but is not an srun step.
  EXPECT_EQ(DetectLauncher({{"SLURM_STEP_NUM_TASKS", "8"}}), Launcher::kNone);
  EXPECT_EQ(DetectLauncher({{"PMIX_RANK", "0"}}), Launcher::kPmi);
}

TEST(WorldLauncher, AnSrunStepWithoutPmiIsAnError) {
  using launch_internal::CheckPmi;
  EXPECT_TRUE(CheckPmi({}).ok());
  EXPECT_TRUE(
      CheckPmi({{"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_ID", "0"}, {"PMIX_RANK", "1"}}).ok());
  EXPECT_TRUE(
      CheckPmi({{"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_ID", "0"}, {"PMI_RANK", "1"}}).ok());
  const absl::Status s = CheckPmi({{"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_ID", "0"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("srun --mpi=pmix"));
}

TEST(WorldLauncher, AMisLaunchOfSeparateWorldsIsAnError) {
  EXPECT_TRUE(CheckWorldSize(4, {{"OMPI_COMM_WORLD_SIZE", "4"}}).ok());
  EXPECT_TRUE(CheckWorldSize(1, {}).ok());
  const absl::Status s = CheckWorldSize(1, {{"SLURM_STEP_NUM_TASKS", "4"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("MPI reports a world of 1 rank(s) but the "
                                                  "launcher started 4"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("srun --mpi=pmix"));
  EXPECT_TRUE(absl::IsInvalidArgument(CheckWorldSize(2, {{"PMI_SIZE", "two"}})));
}

}  // namespace
}  // namespace usine
