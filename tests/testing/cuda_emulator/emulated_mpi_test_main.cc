// gtest main of the multi-rank tests whose gpu cases run against the emulated twins of the
// libraries under mpirun (usine_emulated_mpi_test, cmake/UsineCudaEmulation.cmake): each rank
// emulates a GPU of its own and NCCL goes over MPI (shim/nccl.h). As mpi_test_runner.h, and a
// case during which a rank's emulator reported an error fails that rank (emulator_errors.h).
#include "tests/testing/cuda_emulator/emulator_errors.h"
#include "tests/testing/mpi_test_runner.h"

int main(int argc, char** argv) {
  auto* errors = new usine::testing::cuda_emulator::EmulatorErrors;  // Owned by gtest.
  return usine::testing::RunTestsOnEveryRank(argc, argv, errors,
                                             [errors] { return errors->failed(); });
}
