// gtest main for tests that CTest runs under mpirun (usine_mpi_test in cmake/).
#include "tests/testing/mpi_test_runner.h"

int main(int argc, char** argv) { return usine::testing::RunTestsOnEveryRank(argc, argv); }
