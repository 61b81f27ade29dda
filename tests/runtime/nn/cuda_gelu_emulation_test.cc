// The GELU and column-sum kernels (cuda_gelu.h, cuda_elementwise.h) on the CPU, under the CUDA
// emulator (tests/testing/cuda_emulator/README.md), through their launchers, on [rows, cols]
// arrays of more rows than one chunk of the column sums. Checked: GELU and its gradient against
// double precision for every instantiated combination of f32 and bf16 arrays, each bf16 result
// being the f32 one rounded; the fused gradient-and-bias-gradient pass gives the gradient of the
// plain pass and the column sums of LaunchAccumulateColumnSums over the f32 gradient, bit for
// bit; the rounding column sums give the rounded input and the plain sums' bits; column sums are
// added to what the array held, match double precision, and repeat bit for bit under every
// thread schedule.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_elementwise.h"
#include "runtime/nn/internal/cuda_gelu.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/emulated_kernel_test.h"

namespace usine {
namespace {

namespace ni = nn_internal::cuda;
using kernels_internal::FromFloat;
using kernels_internal::ToFloat;
using testing::cuda_emulator::CpAsync;
using testing::cuda_emulator::DeviceArray;
using testing::cuda_emulator::EmulatedKernelTest;
using testing::cuda_emulator::ExecutionOrder;
using testing::cuda_emulator::ExpectTheSameUnderEveryOrder;
using testing::cuda_emulator::SetExecutionOrder;

struct Rows {
  int64_t rows, cols;
};
// More rows than a column-sum chunk (128) with a width not a multiple of a warp; one row; one
// column.
const Rows kRows[] = {{300, 45}, {1, 700}, {257, 1}};

std::string RowsName(const ::testing::TestParamInfo<Rows>& info) {
  return "R" + std::to_string(info.param.rows) + "_C" + std::to_string(info.param.cols);
}

uint32_t Bits(float x) { return std::bit_cast<uint32_t>(x); }
uint32_t Bits(BFloat16 x) { return x.bits; }

double Gelu(double v) {
  const double k = std::sqrt(2 / M_PI);
  return 0.5 * v * (1 + std::tanh(k * (v + 0.044715 * v * v * v)));
}
double GeluSlope(double v) {
  const double k = std::sqrt(2 / M_PI);
  const double t = std::tanh(k * (v + 0.044715 * v * v * v));
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v);
}

// f32 evaluations of tanh and of a few products: within 1e-5 of max(1, |value|) absolute.
constexpr double kF32Tolerance = 1e-5;
// A bf16 result is the f32 one rounded, at most 2^-8 of its magnitude away.
constexpr double kBf16Tolerance = 1.0 / 256;

class GeluEmulation : public EmulatedKernelTest<::testing::TestWithParam<Rows>> {
 protected:
  void SetUp() override {
    EmulatedKernelTest::SetUp();
    const auto [rows, cols] = GetParam();
    std::mt19937 rng(static_cast<uint32_t>(rows * 13 + cols));
    std::normal_distribution<float> normal(0.0f, 1.5f);
    x_.resize(rows * cols);
    dy_.resize(rows * cols);
    for (float& v : x_) v = normal(rng);
    for (float& v : dy_) v = normal(rng);
  }
  int64_t n() const { return static_cast<int64_t>(x_.size()); }
  // The inputs as T (rounded to bf16 for BFloat16), in device arrays.
  template <typename T>
  std::unique_ptr<DeviceArray<T>> Device(const std::vector<float>& values) const {
    auto a = std::make_unique<DeviceArray<T>>(values.size(), "input");
    for (size_t i = 0; i < values.size(); ++i) (*a)[i] = FromFloat<T>(values[i]);
    return a;
  }

  std::vector<float> x_, dy_;
};

TEST_P(GeluEmulation, ForwardMatchesDoublePrecisionAndItsBf16IsTheF32Rounded) {
  const auto x = Device<float>(x_);
  DeviceArray<float> y(n(), "y");
  DeviceArray<BFloat16> y_bf16(n(), "y bf16");
  ASSERT_EQ(ni::LaunchGeluForward(x->data(), n(), y.data(), nullptr), cudaSuccess);
  ASSERT_EQ(ni::LaunchGeluForward(x->data(), n(), y_bf16.data(), nullptr), cudaSuccess);
  for (int64_t i = 0; i < n(); ++i) {
    const double ref = Gelu(x_[i]);
    ASSERT_NEAR(y[i], ref, kF32Tolerance * std::max(1.0, std::fabs(ref))) << "element " << i;
    ASSERT_EQ(y_bf16[i].bits, BFloat16::FromFloat(y[i]).bits) << "element " << i;
  }
}

// LaunchGeluBackward<TIn, TDy, TOut> against double precision on the same (rounded) inputs;
// returns dx.
template <typename TIn, typename TDy, typename TOut>
std::vector<TOut> ExpectBackwardMatches(const std::vector<float>& x, const std::vector<float>& dy) {
  const int64_t n = static_cast<int64_t>(x.size());
  DeviceArray<TIn> device_x(n, "x");
  DeviceArray<TDy> device_dy(n, "dy");
  DeviceArray<TOut> dx(n, "dx");
  for (int64_t i = 0; i < n; ++i) {
    device_x[i] = FromFloat<TIn>(x[i]);
    device_dy[i] = FromFloat<TDy>(dy[i]);
  }
  EXPECT_EQ(ni::LaunchGeluBackward(device_x.data(), device_dy.data(), n, dx.data(), nullptr),
            cudaSuccess);
  const double tolerance = std::is_same_v<TOut, float> ? kF32Tolerance : kBf16Tolerance;
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double ref = static_cast<double>(ToFloat(device_dy[i])) * GeluSlope(ToFloat(device_x[i]));
    wrong += std::fabs(ToFloat(dx[i]) - ref) > tolerance * std::max(1.0, std::fabs(ref));
  }
  EXPECT_EQ(wrong, 0) << "elements of dx farther than " << tolerance << " from double precision";
  return dx.ToVector();
}

TEST_P(GeluEmulation, BackwardMatchesDoublePrecisionForEveryInstantiation) {
  const std::vector<float> f32 = ExpectBackwardMatches<float, float, float>(x_, dy_);
  const std::vector<BFloat16> bf16 = ExpectBackwardMatches<float, float, BFloat16>(x_, dy_);
  for (int64_t i = 0; i < n(); ++i) {
    ASSERT_EQ(bf16[i].bits, BFloat16::FromFloat(f32[i]).bits) << "element " << i;
  }
  ExpectBackwardMatches<BFloat16, float, float>(x_, dy_);
  ExpectBackwardMatches<BFloat16, float, BFloat16>(x_, dy_);
  ExpectBackwardMatches<float, BFloat16, BFloat16>(x_, dy_);
  ExpectBackwardMatches<BFloat16, BFloat16, BFloat16>(x_, dy_);
}

// Column sums added to sums[c] = c - 0.5.
std::vector<float> StartingSums(int64_t cols) {
  std::vector<float> sums(cols);
  for (int64_t c = 0; c < cols; ++c) sums[c] = static_cast<float>(c) - 0.5f;
  return sums;
}

TEST_P(GeluEmulation, GradientWithColumnSumsIsThePlainGradientAndItsColumnSumsBitForBit) {
  const auto [rows, cols] = GetParam();
  const auto x = Device<float>(x_);
  const auto dy = Device<float>(dy_);
  DeviceArray<float> dx(n(), "dx"), fused_dx(n(), "fused dx");
  DeviceArray<float> sums(cols, "sums"), fused_sums(cols, "fused sums");
  DeviceArray<float> scratch(ni::ColumnSumsScratch(rows, cols), "scratch");
  const std::vector<float> start = StartingSums(cols);
  std::copy(start.begin(), start.end(), sums.data());
  std::copy(start.begin(), start.end(), fused_sums.data());
  ASSERT_EQ(ni::LaunchGeluBackward(x->data(), dy->data(), n(), dx.data(), nullptr), cudaSuccess);
  ASSERT_EQ(
      ni::LaunchAccumulateColumnSums(dx.data(), rows, cols, sums.data(), scratch.data(), nullptr),
      cudaSuccess);
  ASSERT_EQ(ni::LaunchGeluBackwardAndColumnSums(x->data(), dy->data(), rows, cols, fused_dx.data(),
                                                fused_sums.data(), scratch.data(), nullptr),
            cudaSuccess);
  for (int64_t i = 0; i < n(); ++i) ASSERT_EQ(Bits(fused_dx[i]), Bits(dx[i])) << "element " << i;
  for (int64_t c = 0; c < cols; ++c) {
    ASSERT_EQ(Bits(fused_sums[c]), Bits(sums[c])) << "column " << c;
    double ref = start[c];
    for (int64_t r = 0; r < rows; ++r) ref += dx[r * cols + c];
    EXPECT_NEAR(sums[c], ref, kF32Tolerance * std::max(1.0, std::fabs(ref))) << "column " << c;
  }
}

TEST_P(GeluEmulation, RoundingColumnSumsRoundTheInputAndSumAsThePlainOnes) {
  const auto [rows, cols] = GetParam();
  const auto dy = Device<float>(dy_);
  DeviceArray<BFloat16> rounded(n(), "rounded");
  DeviceArray<float> sums(cols, "sums"), rounding_sums(cols, "rounding sums");
  DeviceArray<float> scratch(ni::ColumnSumsScratch(rows, cols), "scratch");
  const std::vector<float> start = StartingSums(cols);
  std::copy(start.begin(), start.end(), sums.data());
  std::copy(start.begin(), start.end(), rounding_sums.data());
  ASSERT_EQ(
      ni::LaunchAccumulateColumnSums(dy->data(), rows, cols, sums.data(), scratch.data(), nullptr),
      cudaSuccess);
  ASSERT_EQ(ni::LaunchRoundAndAccumulateColumnSums(dy->data(), rows, cols, rounded.data(),
                                                   rounding_sums.data(), scratch.data(), nullptr),
            cudaSuccess);
  for (int64_t i = 0; i < n(); ++i) {
    ASSERT_EQ(rounded[i].bits, BFloat16::FromFloat(dy_[i]).bits) << "element " << i;
  }
  for (int64_t c = 0; c < cols; ++c) {
    ASSERT_EQ(Bits(rounding_sums[c]), Bits(sums[c])) << "column " << c;
  }
}

TEST_P(GeluEmulation, ColumnSumsRepeatBitForBitUnderEverySchedule) {
  const auto [rows, cols] = GetParam();
  const auto x = Device<BFloat16>(x_);
  const auto dy = Device<BFloat16>(dy_);
  auto run = [&](const ExecutionOrder& order) {
    SetExecutionOrder(order);
    DeviceArray<BFloat16> dx(n(), "dx");
    DeviceArray<float> sums(cols, "sums");
    DeviceArray<float> scratch(ni::ColumnSumsScratch(rows, cols), "scratch");
    std::fill_n(sums.data(), cols, 0.0f);
    EXPECT_EQ(ni::LaunchGeluBackwardAndColumnSums(x->data(), dy->data(), rows, cols, dx.data(),
                                                  sums.data(), scratch.data(), nullptr),
              cudaSuccess);
    std::vector<uint32_t> bits;
    for (BFloat16 v : dx.ToVector()) bits.push_back(Bits(v));
    for (float v : sums.ToVector()) bits.push_back(Bits(v));
    return bits;
  };
  ExpectTheSameUnderEveryOrder(run, CpAsync::kNotUsed);
}

INSTANTIATE_TEST_SUITE_P(Rows, GeluEmulation, ::testing::ValuesIn(kRows), RowsName);

}  // namespace
}  // namespace usine
