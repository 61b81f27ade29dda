// gtest main of the gpu tests built against the emulated twins of the libraries
// (usine_emulated_gpu_test, cmake/UsineCudaEmulation.cmake): a case during which the emulator
// reported an error fails (emulator_errors.h), and the process exits 1.
#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/emulator_errors.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* errors = new usine::testing::cuda_emulator::EmulatorErrors;  // Owned by gtest.
  testing::UnitTest::GetInstance()->listeners().Append(errors);
  const int result = RUN_ALL_TESTS();
  return result != 0 || errors->failed() ? 1 : 0;
}
