// Runs under mpirun at 2 and 4 ranks on one node.
#include <mpi.h>

#include "gtest/gtest.h"

#include "runtime/launch/world.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

TEST(WorldMpi, RanksLocalRanksAndTheWorldCommunicator) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world, World::Init());
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(world->rank(), rank);
  EXPECT_EQ(world->size(), size);
  EXPECT_EQ(world->launcher(), Launcher::kOpenMpi);
  EXPECT_EQ(world->local_size(), size) << "one node";
  EXPECT_EQ(world->local_rank(), rank);
  EXPECT_EQ(world->comm().backend(), "mpi");
  ASSERT_OK_AND_ASSIGN(Tensor t, testing::MakeTensor<int64_t>(Device::Cpu(), {1}, {rank}));
  ASSERT_OK(world->comm().AllReduce(t, ReduceOp::kSum));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> v, testing::ReadTensor<int64_t>(t));
  EXPECT_EQ(v[0], int64_t{size} * (size - 1) / 2);
}

}  // namespace
}  // namespace usine
