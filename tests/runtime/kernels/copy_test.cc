#include "runtime/kernels/copy.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

class CopyTest : public testing::DeviceTest {};

TEST_P(CopyTest, RoundTripsEveryDTypeThroughTheDevice) {
  for (DType dtype : kAllDTypes) {
    const int64_t n = 1000 + static_cast<int64_t>(DTypeSize(dtype));
    std::vector<uint8_t> bytes(n * DTypeSize(dtype));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7);
    ASSERT_OK_AND_ASSIGN(Tensor host, MakeTensor(Device::Cpu(), {n}, dtype, bytes.data()));
    ASSERT_OK_AND_ASSIGN(Tensor dev, Tensor::Empty({n}, dtype, device()));
    ASSERT_OK_AND_ASSIGN(Tensor dev2, Tensor::Empty({n}, dtype, device()));
    ASSERT_OK_AND_ASSIGN(Tensor back, Tensor::Empty({n}, dtype));
    ASSERT_OK(Copy(host, dev));
    ASSERT_OK(Copy(dev, dev2));  // Same device.
    ASSERT_OK(Copy(dev2, back));
    ASSERT_OK_AND_ASSIGN(std::vector<char> got, testing::ReadBytes(back));
    EXPECT_EQ(got, std::vector<char>(bytes.begin(), bytes.end())) << DTypeName(dtype);
  }
}

TEST_P(CopyTest, AsynchronousCopyFromPinnedMemoryOnAStream) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  ASSERT_OK_AND_ASSIGN(Tensor pinned, Tensor::Empty({1 << 16}, DType::kI32, PinnedHostAllocator()));
  ASSERT_OK_AND_ASSIGN(absl::Span<int32_t> values, pinned.host_span<int32_t>());
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int32_t>(i * i);
  ASSERT_OK_AND_ASSIGN(Tensor dev,
                       Tensor::Empty({1 << 16}, DType::kI32, device(), stream.handle()));
  ASSERT_OK(Copy(pinned, dev, stream));  // For the cpu, Stream::Create gives the host stream.
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> got, ReadTensor<int32_t>(dev));
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<int32_t>(i * i));
}

TEST_P(CopyTest, ViewsCopyOnlyTheirWindow) {
  ASSERT_OK_AND_ASSIGN(Tensor src, MakeTensor<float>(Device::Cpu(), {6}, {0, 1, 2, 3, 4, 5}));
  ASSERT_OK_AND_ASSIGN(Tensor dst, MakeTensor<float>(device(), {6}, {9, 9, 9, 9, 9, 9}));
  ASSERT_OK_AND_ASSIGN(Tensor src_mid, src.View(1, {3}));
  ASSERT_OK_AND_ASSIGN(Tensor dst_mid, dst.View(2, {3}));
  ASSERT_OK(Copy(src_mid, dst_mid));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(dst));
  EXPECT_EQ(got, (std::vector<float>{9, 9, 1, 2, 3, 9}));
}

TEST_P(CopyTest, MismatchesAreErrors) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({2, 2}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({4}, DType::kI32));
  EXPECT_THAT(std::string(Copy(a, b).message()), HasSubstr("shape mismatch: Copy src"));
  EXPECT_THAT(std::string(Copy(a, c).message()), HasSubstr("dtype mismatch: Copy src"));
  ASSERT_OK_AND_ASSIGN(Tensor empty_src, Tensor::Empty({0, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor empty_dst, Tensor::Empty({0, 3}, DType::kF32));
  EXPECT_OK(Copy(empty_src, empty_dst));
}

USINE_INSTANTIATE_DEVICE_TESTS(CopyTest);

}  // namespace
}  // namespace usine
