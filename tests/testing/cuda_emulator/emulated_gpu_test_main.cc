// gtest main of the gpu tests built against the emulated twins of the libraries
// (usine_emulated_gpu_test, cmake/UsineCudaEmulation.cmake): a case during which the emulator
// reported an error (a write past a device array, threads at different barriers, a cp.async
// copy never waited for: README.md) fails, naming the count and the latest, and the process
// exits 1, whatever the case's own assertions said.
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace {

class EmulatorErrors : public testing::EmptyTestEventListener {
 public:
  void OnTestStart(const testing::TestInfo&) override {
    errors_at_start_ = usine::testing::cuda_emulator::ErrorCount();
  }

  void OnTestEnd(const testing::TestInfo& info) override {
    const int errors = usine::testing::cuda_emulator::ErrorCount() - errors_at_start_;
    if (errors == 0) return;
    std::fprintf(stderr, "[  FAILED  ] %s.%s: %d CUDA emulator error(s), the latest: %s\n",
                 info.test_suite_name(), info.name(), errors,
                 usine::testing::cuda_emulator::LastErrorMessage().c_str());
    failed_ = true;
  }

  bool failed() const { return failed_; }

 private:
  int errors_at_start_ = 0;
  bool failed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* errors = new EmulatorErrors;  // Owned by gtest's listeners.
  testing::UnitTest::GetInstance()->listeners().Append(errors);
  const int result = RUN_ALL_TESTS();
  return result != 0 || errors->failed() ? 1 : 0;
}
