// gtest main of the multi-rank tests whose gpu cases run against the emulated twins of the
// libraries under mpirun (usine_emulated_mpi_test, cmake/UsineCudaEmulation.cmake): each rank
// emulates a GPU of its own and NCCL goes over MPI (shim/nccl.h). As mpi_test_runner.h, and a
// case during which a rank's emulator reported an error fails that rank (emulator_errors.h), as
// does a run where no case passed (a filter that matched nothing, or cases that all skipped).
#include <cstdio>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/emulator_errors.h"
#include "tests/testing/mpi_test_runner.h"

int main(int argc, char** argv) {
  auto* errors = new usine::testing::cuda_emulator::EmulatorErrors;  // Owned by gtest.
  return usine::testing::RunTestsOnEveryRank(argc, argv, errors, [errors] {
    if (testing::UnitTest::GetInstance()->successful_test_count() == 0) {
      std::fprintf(stderr, "no case passed: none ran, or every one skipped\n");
      return true;
    }
    return errors->failed();
  });
}
