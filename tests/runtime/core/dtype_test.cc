#include "runtime/core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gtest/gtest.h"

#include "runtime/core/float16.h"

namespace usine {
namespace {

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

uint32_t ToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

TEST(DType, SizesNamesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kU16), 2u);
  EXPECT_EQ(DTypeSize(DType::kU8), 1u);
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_FALSE(IsFloatingPoint(DType::kF64));  // Not a type of the floating kernels.
  for (DType d : kAllDTypes) {
    absl::StatusOr<DType> parsed = ParseDType(DTypeName(d));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, d);
  }
  const absl::Status bad = ParseDType("float32").status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("float32"), absl::string_view::npos);
  EXPECT_TRUE(IsFloatingPoint(DType::kBF16));
  EXPECT_FALSE(IsFloatingPoint(DType::kI32));
  static_assert(kDTypeOf<BFloat16> == DType::kBF16 && kDTypeOf<int64_t> == DType::kI64);
}

// Every float16 value survives float16 -> float -> float16, and the float is the exact value.
TEST(Float16, AllValuesRoundTripExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Float16BitsToFloat(static_cast<uint16_t>(h));
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_EQ(FloatToFloat16Bits(f) & 0x8000, h & 0x8000) << "sign of NaN " << h;
      EXPECT_EQ(FloatToFloat16Bits(f) & 0x7e00, 0x7e00u) << "quiet NaN " << h;
      continue;
    }
    EXPECT_EQ(FloatToFloat16Bits(f), h) << "h=" << h << " f=" << f;
    // Exact value: sign * mantissa * 2^exponent, computed independently in double.
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double want = e == 0    ? std::ldexp(m, -24)
                  : e == 31 ? std::numeric_limits<double>::infinity()
                            : std::ldexp(1024 + m, e - 25);
    if (h & 0x8000) want = -want;
    EXPECT_EQ(static_cast<double>(f), want) << h;
  }
}

// Between two neighbouring float16 values, floats round to the nearer one, and exact
// midpoints to the one with an even mantissa; checked at every midpoint and its neighbours.
TEST(Float16, RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {  // Positive finite values below the largest.
    const float lo = Float16BitsToFloat(static_cast<uint16_t>(h));
    const float hi = Float16BitsToFloat(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);  // Exact.
    const uint16_t even = (h & 1) == 0 ? h : h + 1;
    EXPECT_EQ(FloatToFloat16Bits(mid), even) << "midpoint above " << h;
    EXPECT_EQ(FloatToFloat16Bits(std::nextafter(mid, 0.0f)), h) << h;
    EXPECT_EQ(FloatToFloat16Bits(std::nextafter(mid, 1e9f)), h + 1) << h;
    EXPECT_EQ(FloatToFloat16Bits(-mid), 0x8000 | even) << h;
  }
}

TEST(Float16, OverflowUnderflowInfinityAndNaN) {
  EXPECT_EQ(FloatToFloat16Bits(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToFloat16Bits(65519.99f), 0x7bff);
  EXPECT_EQ(FloatToFloat16Bits(65520.0f), 0x7c00);  // The midpoint to 2^16 ties to Inf.
  EXPECT_EQ(FloatToFloat16Bits(1e10f), 0x7c00);
  EXPECT_EQ(FloatToFloat16Bits(-1e10f), 0xfc00);
  EXPECT_EQ(FloatToFloat16Bits(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToFloat16Bits(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(FloatToFloat16Bits(std::ldexp(1.0f, -25)), 0x0000);  // Half the least: ties to 0.
  EXPECT_EQ(FloatToFloat16Bits(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToFloat16Bits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToFloat16Bits(1e-30f), 0x0000);
  EXPECT_TRUE(std::isnan(Float16BitsToFloat(FloatToFloat16Bits(std::nanf("")))));
  EXPECT_EQ(FloatToFloat16Bits(-std::numeric_limits<float>::quiet_NaN()) & 0xfe00, 0xfe00);
}

// Against the compiler's own _Float16 conversion (round to nearest even) on random floats.
TEST(Float16, MatchesCompilerConversionOnRandomFloats) {
  std::mt19937 rng(20240520);
  for (int i = 0; i < 2000000; ++i) {
    const float f = FromBits(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, sizeof(ref_bits));
    ASSERT_EQ(FloatToFloat16Bits(f), ref_bits) << "f=" << f << " bits=" << ToBits(f);
  }
}

TEST(BFloat16, AllValuesRoundTripExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = BFloat16BitsToFloat(static_cast<uint16_t>(h));
    EXPECT_EQ(ToBits(f), h << 16);  // bf16 is the top half of a float.
    if (std::isnan(f)) {
      EXPECT_EQ(FloatToBFloat16Bits(f), h | 0x0040) << h;  // Quieted, payload and sign kept.
    } else {
      EXPECT_EQ(FloatToBFloat16Bits(f), h) << h;
    }
  }
}

TEST(BFloat16, RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7f7f; h += 1) {       // Positive finite values below the largest.
    const uint32_t mid_bits = (h << 16) | 0x8000;  // Exactly halfway to h + 1.
    const uint16_t even = (h & 1) == 0 ? h : h + 1;
    EXPECT_EQ(FloatToBFloat16Bits(FromBits(mid_bits)), even) << h;
    EXPECT_EQ(FloatToBFloat16Bits(FromBits(mid_bits - 1)), h) << h;
    EXPECT_EQ(FloatToBFloat16Bits(FromBits(mid_bits + 1)), h + 1) << h;
    EXPECT_EQ(FloatToBFloat16Bits(FromBits(mid_bits | 0x80000000u)), 0x8000 | even) << h;
  }
  // The largest finite float rounds up to Inf; Inf stays Inf.
  EXPECT_EQ(FloatToBFloat16Bits(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(FloatToBFloat16Bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(FloatToBFloat16Bits(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(BFloat16::FromFloat(3.14159f).ToFloat(), 3.140625f);
}

}  // namespace
}  // namespace usine
