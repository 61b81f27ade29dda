#include "runtime/core/device.h"

#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

TEST(Device, ParsesAndPrints) {
  ASSERT_OK_AND_ASSIGN(Device cpu, Device::Parse("cpu"));
  EXPECT_EQ(cpu, Device::Cpu());
  ASSERT_OK_AND_ASSIGN(Device cuda, Device::Parse("cuda"));
  EXPECT_EQ(cuda, Device::Cuda(0));
  ASSERT_OK_AND_ASSIGN(Device three, Device::Parse("cuda:3"));
  EXPECT_EQ(three.index(), 3);
  EXPECT_TRUE(three.is_cuda());
  EXPECT_EQ(three.ToString(), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""}) {
    EXPECT_TRUE(absl::IsInvalidArgument(Device::Parse(bad).status())) << bad;
  }
  EXPECT_NE(Device::Cuda(0), Device::Cuda(1));
}

// Whatever this machine has, discovery answers without error and agrees with itself.
TEST(Device, DiscoveryIsConsistent) {
  const int count = CudaDeviceCount();
  EXPECT_GE(count, 0);
  EXPECT_EQ(static_cast<int>(ListCudaDevices().size()), count);
  EXPECT_EQ(CudaUnavailableReason().empty(), count > 0);
  if (!BuiltWithCuda()) {
    EXPECT_EQ(count, 0);
    EXPECT_EQ(CudaUnavailableReason(), "built without CUDA");
  }
  EXPECT_TRUE(CheckDeviceAvailable(Device::Cpu()).ok());
  EXPECT_TRUE(SetCurrentDevice(Device::Cpu()).ok());
  const absl::Status missing = CheckDeviceAvailable(Device::Cuda(count));
  EXPECT_TRUE(absl::IsFailedPrecondition(missing));
  EXPECT_NE(missing.message().find("cuda:" + std::to_string(count)), absl::string_view::npos);
  EXPECT_TRUE(absl::IsFailedPrecondition(SetCurrentDevice(Device::Cuda(count))));
}

TEST(DeviceGpuTest, ListsRealDevices) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  for (const CudaDeviceInfo& info : ListCudaDevices()) {
    EXPECT_FALSE(info.name.empty());
    EXPECT_GT(info.total_memory_bytes, 0);
    EXPECT_GE(info.compute_capability_major, 7);
    EXPECT_GT(info.multiprocessor_count, 0);
  }
  EXPECT_TRUE(SetCurrentDevice(Device::Cuda(0)).ok());
}

}  // namespace
}  // namespace usine
