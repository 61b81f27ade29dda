// A gtest listener for tests built against the emulated twins of the libraries: a case during
// which the emulator reported an error (a write past a device array, threads at different
// barriers, a cp.async copy never waited for: README.md) is printed as failed, naming the count
// and the latest, and failed() turns true, for the test main to fail the process whatever the
// cases' own assertions said.
//
//   auto* errors = new EmulatorErrors;  // Owned by gtest's listeners once appended.
//   listeners.Append(errors);
//   ... RUN_ALL_TESTS() != 0 || errors->failed() ...
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATOR_ERRORS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATOR_ERRORS_H_

#include <cstdio>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {

class EmulatorErrors : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { errors_at_start_ = ErrorCount(); }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    const int errors = ErrorCount() - errors_at_start_;
    if (errors == 0) return;
    std::fprintf(stderr, "[  FAILED  ] %s.%s: %d CUDA emulator error(s), the latest: %s\n",
                 info.test_suite_name(), info.name(), errors, LastErrorMessage().c_str());
    failed_ = true;
  }

  // Whether any case had errors: asked after the tests.
  bool failed() const { return failed_; }

 private:
  int errors_at_start_ = 0;
  bool failed_ = false;
};

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATOR_ERRORS_H_
