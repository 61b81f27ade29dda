// GoogleTest support for tests of kernels under the CUDA emulator (cuda_emulator.h): a fixture
// that fails a test during which the emulator reported errors and restores the default execution
// order after it, and a check that a kernel's results do not depend on the execution order.
//
//   class LayerNormEmulation : public EmulatedKernelTest<::testing::TestWithParam<Rows>> {};
//   ExpectTheSameUnderEveryOrder([&](const ExecutionOrder& order) { ...; return bits; },
//                                CpAsync::kNotUsed);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATED_KERNEL_TEST_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATED_KERNEL_TEST_H_

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {

template <typename Base = ::testing::Test>
class EmulatedKernelTest : public Base {
 protected:
  void SetUp() override { errors_before_ = ErrorCount(); }
  void TearDown() override {
    SetExecutionOrder({});
    EXPECT_EQ(ErrorCount(), errors_before_)
        << "the emulator reported errors (stderr); the latest: " << LastErrorMessage();
  }

 private:
  int errors_before_ = 0;
};

// Whether the kernels under test issue cp.async copies: without them the landing moments would
// repeat the same runs.
enum class CpAsync { kUsed, kNotUsed };

// Expects run(order), which sets `order` for its launches and returns their results, to return
// the default order's results under every schedule (and cp.async landing, when used).
template <typename Run>
void ExpectTheSameUnderEveryOrder(const Run& run, CpAsync cp_async) {
  const auto first = run(ExecutionOrder{});
  for (const ExecutionOrder& order : AllExecutionOrders()) {
    if (cp_async == CpAsync::kNotUsed && order.cp_async_landing != CpAsyncLanding::kAtWait) {
      continue;
    }
    EXPECT_EQ(run(order), first) << DescribeExecutionOrder(order);
  }
}

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_EMULATED_KERNEL_TEST_H_
