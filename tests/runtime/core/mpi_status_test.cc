// Runs under mpirun at 2 and 4 ranks (usine_mpi_test).
#include "runtime/core/mpi_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

class MpiStatusTest : public ::testing::Test {
 protected:
  void SetUp() override { MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); }
  void TearDown() override { MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL); }
};

TEST_F(MpiStatusTest, ABadCountIsInvalidArgumentWithMpisMessage) {
  int value = 0;
  const absl::Status s = USINE_MPI_STATUS(MPI_Send(&value, -1, MPI_INT, 0, 0, MPI_COMM_WORLD));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("mpi_status_test.cc:"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("MPI_Send(&value, -1,"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(MpiErrorString(MPI_ERR_COUNT)));
}

TEST_F(MpiStatusTest, ABadRootIsInvalidArgument) {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int value = 0;
  const absl::Status s = USINE_MPI_STATUS(MPI_Bcast(&value, 1, MPI_INT, size, MPI_COMM_WORLD));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

// The harness itself: every rank takes part, with a result each rank can check exactly.
TEST_F(MpiStatusTest, SuccessfulCollectiveIsOk) {
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_GE(size, 2);
  const int mine = rank + 1;
  int total = 0;
  ASSERT_OK(USINE_MPI_STATUS(MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD)));
  EXPECT_EQ(total, size * (size + 1) / 2);
}

}  // namespace
}  // namespace usine
