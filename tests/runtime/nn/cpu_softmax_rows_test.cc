// The cpu layers' vectorised exp, tanh, softmax row operations and GELU (nn/internal/cpu_exp.h,
// cpu_softmax_rows.h, cpu_gelu.h) against the C library's, in double, and across vector widths.
#include "runtime/nn/internal/cpu_softmax_rows.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/nn/internal/cpu_exp.h"
#include "runtime/nn/internal/cpu_gelu.h"

namespace usine::nn_internal {
namespace {

// |got - want| in units of the last place of want as a float.
double UlpError(float got, double want) {
  const float rounded = static_cast<float>(want);
  const double ulp = std::nextafter(rounded, std::numeric_limits<float>::infinity()) - rounded;
  return std::abs(got - want) / ulp;
}

std::vector<float> RandomRow(int64_t n, float scale, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> row(n);
  for (float& x : row) x = uniform(gen);
  return row;
}

TEST(CpuExp, WithinOneUlpOfExpWhereFloatsAreNormal) {
  double worst = 0;
  constexpr int64_t kPerUnit = 4096;  // x = i / kPerUnit over [-86.5, 88.7).
  for (int64_t i = -86 * kPerUnit - kPerUnit / 2; i < 88 * kPerUnit + 2867; ++i) {
    const float xf = static_cast<float>(static_cast<double>(i) / kPerUnit);
    worst = std::max(worst, UlpError(Exp(xf), std::exp(static_cast<double>(xf))));
  }
  EXPECT_LE(worst, 1.0);
  EXPECT_EQ(Exp(0.0f), 1.0f);
}

TEST(CpuExp, UnderflowsToZeroOverflowsToInfinityAndKeepsNaN) {
  EXPECT_EQ(Exp(-87.0f), 0.0f);
  EXPECT_EQ(Exp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(Exp(88.75f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(Exp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isfinite(Exp(88.72f)));  // Just below FLT_MAX.
}

TEST(CpuExp, EachLaneIsTheScalarFunction) {
  const Float4 x = {-3.5f, 0.25f, 10.0f, -80.0f};
  const Float4 e = Exp(x), t = Tanh(x);
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(e[l], Exp(x[l])) << l;
    EXPECT_EQ(t[l], Tanh(x[l])) << l;
  }
}

TEST(CpuExp, TanhWithinTwoTenMillionthsAndSaturates) {
  double worst = 0;
  constexpr int64_t kPerUnit = 1024;  // x = i / kPerUnit over [-12, 12).
  for (int64_t i = -12 * kPerUnit; i < 12 * kPerUnit; ++i) {
    const float xf = static_cast<float>(static_cast<double>(i) / kPerUnit);
    worst = std::max(worst, std::abs(Tanh(xf) - std::tanh(static_cast<double>(xf))));
  }
  EXPECT_LE(worst, 2e-7);
  EXPECT_EQ(Tanh(100.0f), 1.0f);
  EXPECT_EQ(Tanh(-100.0f), -1.0f);
}

// Lengths around the 16-element steps and the 1024-element blocks, so that every tail runs.
constexpr int64_t kLengths[] = {1, 3, 15, 16, 17, 63, 1023, 1024, 1025, 5000};

TEST(SoftmaxRows, RowMaxIsTheLargestElement) {
  for (int64_t n : kLengths) {
    std::vector<float> row = RandomRow(n, 5.0f, static_cast<unsigned>(n));
    row[n / 2] = 7.0f;  // The largest, wherever the lanes put it.
    EXPECT_EQ(RowMax(row.data(), n), 7.0f) << n;
    const std::vector<double> wide(row.begin(), row.end());
    EXPECT_EQ(RowMax(wide.data(), n), 7.0) << n;
  }
}

TEST(SoftmaxRows, SumsOfExponentialsMatchDoublePrecision) {
  for (int64_t n : kLengths) {
    std::vector<float> row = RandomRow(n, 8.0f, static_cast<unsigned>(n) + 100);
    const float shift = RowMax(row.data(), n);
    double want = 0;
    for (float x : row) want += std::exp(static_cast<double>(x) - shift);
    const double sum = SumExpShifted(row.data(), n, shift);
    EXPECT_NEAR(sum, want, 1e-6 * want) << n;
    // Stored, to another row or in place: the same sum to the bit, and each element its own
    // exponential.
    std::vector<float> out(n), in_place = row;
    EXPECT_EQ(ExpShifted(row.data(), n, shift, out.data()), sum) << n;
    EXPECT_EQ(ExpShifted(in_place.data(), n, shift, in_place.data()), sum) << n;
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(out[j], Exp(row[j] - shift)) << n << " " << j;
      ASSERT_EQ(in_place[j], out[j]) << n << " " << j;
    }
  }
}

// The 8- and 16-lane rows (AVX2, AVX-512), where this cpu has them, give the 4-lane row's bits:
// every term and the sum, for lengths around the 16-element steps and 1024-element blocks,
// and values that under- and overflow (and a NaN in the last row).
TEST(SoftmaxRows, EveryVectorWidthGivesTheSameBits) {
  int widths_checked = 0;
  for (const int lanes : {8, 16}) {
    std::vector<float> probe(1, 0.0f);
    if (!ExpShiftedAtLanes(lanes, probe.data(), 1, 0.0f, probe.data()).has_value()) continue;
    ++widths_checked;
    unsigned seed = 1;
    for (const int64_t n : {1, 15, 16, 17, 1023, 1024, 1025, 5000, 50304}) {
      std::vector<float> row = RandomRow(n, 100.0f, seed++);
      if (n == 50304) row[777] = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> narrow(n), wide(n);
      const std::optional<double> narrow_sum =
          ExpShiftedAtLanes(4, row.data(), n, 3.0f, narrow.data());
      const std::optional<double> wide_sum =
          ExpShiftedAtLanes(lanes, row.data(), n, 3.0f, wide.data());
      ASSERT_TRUE(narrow_sum.has_value() && wide_sum.has_value());
      EXPECT_EQ(std::memcmp(narrow_sum.operator->(), wide_sum.operator->(), sizeof(double)), 0)
          << lanes << " lanes, n " << n << ": " << *narrow_sum << " vs " << *wide_sum;
      EXPECT_EQ(std::memcmp(narrow.data(), wide.data(), n * sizeof(float)), 0)
          << lanes << " lanes, n " << n;
    }
  }
  if (widths_checked == 0) GTEST_SKIP() << "this cpu has neither AVX2 nor AVX-512";
}

TEST(SoftmaxRows, DoubleRowsUseTheCLibrary) {
  const std::vector<double> row = {0.5, -1.25, 3.0};
  double want = 0;
  for (double x : row) want += std::exp(x - 3.0);
  EXPECT_EQ(SumExpShifted(row.data(), 3, 3.0), want);
  std::vector<double> in_place = row;
  EXPECT_EQ(ExpShifted(in_place.data(), 3, 3.0, in_place.data()), want);
  EXPECT_EQ(in_place[0], std::exp(0.5 - 3.0));
}

// GELU's f32 loops run on the widest vectors the cpu has, and one element at a time at the end
// of a span (lane 0 of a Float4): each element of a long array, on the wide path, has the bits
// of that element alone, on the narrow one; and the values are GELU's and its slope's in
// double within the tanh's error.
TEST(CpuGelu, EveryElementHasTheBitsItHasAlone) {
  constexpr int64_t n = 1000;  // Not a multiple of 16: a tail as well.
  const std::vector<float> x = RandomRow(n, 6.0f, 21), dy = RandomRow(n, 1.0f, 22);
  std::vector<float> y(n), dx(n);
  GeluForward(x.data(), n, y.data());
  GeluBackward(x.data(), dy.data(), n, dx.data());
  int differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    float y1, dx1;
    GeluForward(&x[i], 1, &y1);
    GeluBackward(&x[i], &dy[i], 1, &dx1);
    differ += std::memcmp(&y1, &y[i], 4) != 0 || std::memcmp(&dx1, &dx[i], 4) != 0;
    const double v = x[i], t = std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v));
    const double slope =
        0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
    EXPECT_NEAR(y[i], 0.5 * v * (1 + t), 1e-6 * (1 + std::abs(v))) << v;
    EXPECT_NEAR(dx[i], dy[i] * slope, 1e-6 * (1 + std::abs(v))) << v;
  }
  EXPECT_EQ(differ, 0);
}

}  // namespace
}  // namespace usine::nn_internal
