// The floors' arithmetic, and the measurements of a device's product rate and copy bandwidth
// on every device (on the emulated GPU too, label emu, where the figures mean nothing but the
// CUDA path runs).
#include "runtime/train/roofline.h"

#include <cmath>

#include "gtest/gtest.h"

#include "runtime/kernels/matmul.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

TEST(FloorSeconds, IsTheSlowerOfTheProductsAndTheMemoryTraffic) {
  const DeviceRates rates{.flops_per_second = 1e12, .bytes_per_second = 1e9};
  EXPECT_DOUBLE_EQ(FloorSeconds({"products", 3e12, 1e9}, rates), 3.0);
  EXPECT_DOUBLE_EQ(FloorSeconds({"memory", 1e12, 5e9}, rates), 5.0);
  EXPECT_DOUBLE_EQ(FloorSeconds({"nothing", 0, 0}, rates), 0.0);
}

class RooflineTest : public testing::DeviceTest {};

TEST_P(RooflineTest, MeasuresAPositiveProductRateInEveryPrecision) {
  for (const MatmulPrecision precision :
       {MatmulPrecision::kF32, MatmulPrecision::kTf32, MatmulPrecision::kBf16}) {
    testing::ScopedMatmulPrecision scoped(precision);
    ASSERT_OK_AND_ASSIGN(const double rate, MeasureProductRate(device(), 64));
    EXPECT_TRUE(std::isfinite(rate) && rate > 0) << MatmulPrecisionName(precision) << ": " << rate;
  }
}

TEST_P(RooflineTest, MeasuresAPositiveCopyBandwidth) {
  ASSERT_OK_AND_ASSIGN(const double bandwidth, MeasureCopyBandwidth(device(), 4 << 20));
  EXPECT_TRUE(std::isfinite(bandwidth) && bandwidth > 0) << bandwidth;
}

TEST_P(RooflineTest, SizesThatAreNoWorkAreErrors) {
  EXPECT_EQ(MeasureProductRate(device(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MeasureCopyBandwidth(device(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MeasureCopyBandwidth(device(), 6).status().code(), absl::StatusCode::kInvalidArgument);
}

USINE_INSTANTIATE_DEVICE_TESTS(RooflineTest);

}  // namespace
}  // namespace usine
