#include "runtime/launch/world.h"

#include <csignal>

#include <mpi.h>

#include "absl/strings/str_cat.h"
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

TEST(World, CommunicatorForTheCpuIsTheWorldsAndForAnotherDeviceAnError) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  ASSERT_OK_AND_ASSIGN(Communicator* const cpu, world->CommunicatorFor(Device::Cpu()));
  EXPECT_EQ(cpu, &world->comm());
  const absl::StatusOr<Communicator*> other = world->CommunicatorFor(Device::Cuda(7));
  EXPECT_TRUE(absl::IsInvalidArgument(other.status())) << other.status();
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr(absl::StrCat("this rank's device is ", world->device().ToString())));
}

// A CUDA run's world: NCCL over the same ranks, made once, with host tensors going to the
// world's own communicator's kind (local here: no launcher).
TEST(WorldGpuTest, CommunicatorForItsDeviceIsAnNcclWorldMadeOnce) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  ASSERT_OK_AND_ASSIGN(Communicator* const nccl, world->CommunicatorFor(world->device()));
  EXPECT_EQ(nccl->backend(), "nccl");
  EXPECT_EQ(nccl->device(), world->device());
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_EQ(nccl->host().backend(), "local");
  ASSERT_OK_AND_ASSIGN(Communicator* const again, world->CommunicatorFor(world->device()));
  EXPECT_EQ(again, nccl);
  ASSERT_OK_AND_ASSIGN(Tensor t, testing::MakeTensor<float>(Device::Cpu(), {3}, {1, 2, 3}));
  ASSERT_OK(nccl->AllReduce(t, ReduceOp::kSum));
  ASSERT_OK_AND_ASSIGN(Tensor d, testing::MakeTensor<float>(world->device(), {3}, {1, 2, 3}));
  ASSERT_OK(nccl->AllReduce(d, ReduceOp::kSum));
  ASSERT_OK_AND_ASSIGN(std::vector<float> v, testing::ReadTensor<float>(d));
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
