// Test helpers shared by the unit and gpu tiers.
//
// A test that should run on every device is a parameterised suite over Device, instantiated
// twice; the `Cuda` instantiation gets the CTest label `gpu` and skips itself where no CUDA
// device exists:
//
//   class FillTest : public usine::testing::DeviceTest {};
//   TEST_P(FillTest, WritesEveryElement) { ... device() ... }
//   USINE_INSTANTIATE_DEVICE_TESTS(FillTest);
#ifndef USINE_TESTS_TESTING_DEVICE_TEST_H_
#define USINE_TESTS_TESTING_DEVICE_TEST_H_

#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

#include "runtime/core/device.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/matmul.h"

namespace usine::testing {

class DeviceTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (device().is_cuda() && CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    }
  }
  Device device() const { return GetParam(); }
};

#define USINE_INSTANTIATE_DEVICE_TESTS(suite)                                      \
  INSTANTIATE_TEST_SUITE_P(Cpu, suite, ::testing::Values(::usine::Device::Cpu())); \
  INSTANTIATE_TEST_SUITE_P(Cuda, suite, ::testing::Values(::usine::Device::Cuda(0)))

// A tensor on `device` holding `values` (copied there through the host).
absl::StatusOr<Tensor> MakeTensor(Device device, const Shape& shape, DType dtype,
                                  const void* values);

template <typename T>
absl::StatusOr<Tensor> MakeTensor(Device device, const Shape& shape, const std::vector<T>& values) {
  if (static_cast<int64_t>(values.size()) != shape.numel()) {
    return absl::InvalidArgumentError("MakeTensor: value count differs from the shape");
  }
  return MakeTensor(device, shape, kDTypeOf<T>, values.data());
}

// The elements of `t` (on any device), copied to the host.
absl::StatusOr<std::vector<char>> ReadBytes(const Tensor& t);

template <typename T>
absl::StatusOr<std::vector<T>> ReadTensor(const Tensor& t) {
  if (t.dtype() != kDTypeOf<T>) return absl::InvalidArgumentError("ReadTensor: wrong type");
  absl::StatusOr<std::vector<char>> bytes = ReadBytes(t);
  if (!bytes.ok()) return bytes.status();
  std::vector<T> values(t.numel());
  if (!values.empty()) std::memcpy(values.data(), bytes->data(), bytes->size());
  return values;
}

// The bits of a float, for exact comparisons that tell -0 from 0 and NaN payloads apart.
uint32_t Bits(float f);

// Sets the process's F32MatmulPrecision for its lifetime, then puts back the one before.
class ScopedMatmulPrecision {
 public:
  explicit ScopedMatmulPrecision(MatmulPrecision precision) : before_(F32MatmulPrecision()) {
    SetF32MatmulPrecision(precision);
  }
  ~ScopedMatmulPrecision() { SetF32MatmulPrecision(before_); }
  ScopedMatmulPrecision(const ScopedMatmulPrecision&) = delete;
  ScopedMatmulPrecision& operator=(const ScopedMatmulPrecision&) = delete;

 private:
  const MatmulPrecision before_;
};

}  // namespace usine::testing

namespace usine::testing {
inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace usine::testing

// Evaluate `expr` (a Status or StatusOr) once and check that it is OK.
#define ASSERT_OK(expr)                                                                     \
  do {                                                                                      \
    const auto& usine_test_result_ = (expr);                                                \
    ASSERT_TRUE(usine_test_result_.ok()) << ::usine::testing::ToStatus(usine_test_result_); \
  } while (false)
#define EXPECT_OK(expr)                                                                     \
  do {                                                                                      \
    const auto& usine_test_result_ = (expr);                                                \
    EXPECT_TRUE(usine_test_result_.ok()) << ::usine::testing::ToStatus(usine_test_result_); \
  } while (false)

// Assigns the value of a StatusOr to `lhs`, failing the test on an error.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  USINE_ASSERT_OK_AND_ASSIGN_IMPL_(USINE_STATUS_CONCAT_(usine_test_so_, __LINE__), lhs, rexpr)
#define USINE_ASSERT_OK_AND_ASSIGN_IMPL_(so, lhs, rexpr) /* NOLINT(bugprone-macro-parentheses) */ \
  auto so = (rexpr);                                                                              \
  ASSERT_TRUE(so.ok()) << so.status();                                                            \
  lhs = std::move(so).value()

#endif  // USINE_TESTS_TESTING_DEVICE_TEST_H_
