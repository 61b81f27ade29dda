#include "runtime/core/tensor.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

TEST(Shape, CountsAndValidates) {
  EXPECT_EQ(Shape({2, 3, 4}).numel(), 24);
  EXPECT_EQ(Shape().numel(), 1);  // A scalar.
  EXPECT_EQ(Shape({5, 0}).numel(), 0);
  EXPECT_EQ(Shape({4, 1024, 768}).ToString(), "[4, 1024, 768]");
  EXPECT_TRUE(Shape({3, -1}).Validate().message().find("dimension 1 is negative") !=
              absl::string_view::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(Shape({int64_t{1} << 40, int64_t{1} << 40}).Validate()));
  EXPECT_TRUE(Shape({int64_t{1} << 31, 4}).Validate().ok());
}

TEST(Tensor, EmptyAllocatesAlignedOwnedMemory) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({3, 5}, DType::kBF16));
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.nbytes(), 30u);
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.dim(1), 5);
  EXPECT_EQ(t.device(), Device::Cpu());
  EXPECT_TRUE(t.owns_memory());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kAllocationAlignment, 0u);
  EXPECT_EQ(t.DebugString(), "bf16[3, 5] on cpu");
}

TEST(Tensor, RejectsBadShapesAndDevices) {
  EXPECT_TRUE(absl::IsInvalidArgument(Tensor::Empty({2, -3}, DType::kF32).status()));
  const absl::Status no_gpu =
      Tensor::Empty({2}, DType::kF32, Device::Cuda(CudaDeviceCount())).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(no_gpu)) << no_gpu;
  EXPECT_THAT(std::string(no_gpu.message()), HasSubstr("cuda:"));
}

TEST(Tensor, TypedAccessChecksTheDType) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(float* p, t.data<float>());
  EXPECT_EQ(static_cast<void*>(p), t.raw_data());
  const absl::Status wrong = t.data<int32_t>().status();
  EXPECT_TRUE(absl::IsInvalidArgument(wrong));
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("i32"));
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("f32[4] on cpu"));
  ASSERT_OK_AND_ASSIGN(absl::Span<float> span, t.host_span<float>());
  EXPECT_EQ(span.size(), 4u);
  EXPECT_TRUE(absl::IsInvalidArgument(Tensor().data<float>().status()));
}

TEST(Tensor, ViewsShareMemoryAndOutliveTheirSource) {
  Tensor view;
  {
    ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({4, 3}, DType::kI32));
    ASSERT_OK_AND_ASSIGN(absl::Span<int32_t> values, t.host_span<int32_t>());
    for (int i = 0; i < 12; ++i) values[i] = 100 + i;
    ASSERT_OK_AND_ASSIGN(view, t.Slice(1, 3));
    EXPECT_TRUE(view.SharesMemoryWith(t));
    EXPECT_EQ(view.shape(), Shape({2, 3}));
  }
  // The source handle is gone; the view keeps the memory alive (ASan checks this).
  ASSERT_OK_AND_ASSIGN(absl::Span<int32_t> rows, view.host_span<int32_t>());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(rows[i], 103 + i);

  ASSERT_OK_AND_ASSIGN(Tensor flat, view.Reshape({6}));
  ASSERT_OK_AND_ASSIGN(Tensor tail, flat.View(4, {2}));
  ASSERT_OK_AND_ASSIGN(absl::Span<int32_t> last, tail.host_span<int32_t>());
  EXPECT_EQ(last[0], 107);
  EXPECT_EQ(last[1], 108);
}

TEST(Tensor, ViewsOutOfRangeAreErrors) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({4, 3}, DType::kF32));
  EXPECT_TRUE(absl::IsOutOfRange(t.View(10, {3}).status()));
  EXPECT_TRUE(absl::IsOutOfRange(t.View(-1, {1}).status()));
  EXPECT_TRUE(t.View(12, {0}).ok());
  EXPECT_TRUE(absl::IsOutOfRange(t.Slice(2, 5).status()));
  EXPECT_TRUE(absl::IsOutOfRange(t.Slice(3, 2).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(t.Reshape({5, 2}).status()));
  ASSERT_OK_AND_ASSIGN(Tensor scalar, Tensor::Empty({}, DType::kF32));
  EXPECT_TRUE(absl::IsInvalidArgument(scalar.Slice(0, 1).status()));
}

TEST(Tensor, OverlapsComparesTheBytesOfTheElements) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({10}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor head, t.View(0, {5}));
  ASSERT_OK_AND_ASSIGN(Tensor tail, t.View(5, {5}));
  ASSERT_OK_AND_ASSIGN(Tensor middle, t.View(4, {2}));
  ASSERT_OK_AND_ASSIGN(Tensor other, Tensor::Empty({10}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor none, t.View(3, {0}));
  EXPECT_FALSE(head.Overlaps(tail));  // Adjacent, not overlapping.
  EXPECT_TRUE(middle.Overlaps(head));
  EXPECT_TRUE(middle.Overlaps(tail));
  EXPECT_TRUE(t.Overlaps(t));
  EXPECT_FALSE(t.Overlaps(other));
  EXPECT_FALSE(none.Overlaps(t));
}

TEST(Tensor, WrapDoesNotOwn) {
  float buffer[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Wrap(buffer, {2, 3}, DType::kF32, Device::Cpu()));
  EXPECT_FALSE(t.owns_memory());
  EXPECT_EQ(t.raw_data(), buffer);
  EXPECT_TRUE(
      absl::IsInvalidArgument(Tensor::Wrap(nullptr, {2}, DType::kF32, Device::Cpu()).status()));
  EXPECT_TRUE(Tensor::Wrap(nullptr, {0}, DType::kF32, Device::Cpu()).ok());
}

TEST(Tensor, EmptyTensorsHaveNoData) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({0, 8}, DType::kF32));
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.raw_data(), nullptr);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_EQ(Tensor().DebugString(), "undefined");
}

TEST(TensorChecks, NameTheArgumentAndBothSides) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({2, 3}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({3, 2}, DType::kBF16));
  EXPECT_TRUE(CheckSameShape(a, a, "a", "a").ok());
  const absl::Status shape = CheckSameShape(a, b, "weight", "grad");
  EXPECT_TRUE(absl::IsInvalidArgument(shape));
  EXPECT_EQ(shape.message(),
            "shape mismatch: weight is f32[2, 3] on cpu, grad is bf16[3, 2] on cpu");
  EXPECT_THAT(std::string(CheckSameDType(a, b, "x", "y").message()), HasSubstr("dtype mismatch"));
  EXPECT_THAT(std::string(CheckDType(a, DType::kI64, "ids").message()),
              HasSubstr("ids: expected dtype i64"));
  EXPECT_THAT(std::string(CheckShape(a, Shape{6}, "x").message()), HasSubstr("expected shape [6]"));
  EXPECT_THAT(std::string(CheckDevice(a, Device::Cuda(1), "x").message()),
              HasSubstr("expected a tensor on cuda:1"));
  EXPECT_TRUE(CheckSameDevice(a, b, "x", "y").ok());
  EXPECT_THAT(std::string(CheckDefined(Tensor(), "bias").message()),
              HasSubstr("bias is an undefined tensor"));
}

class TensorDeviceTest : public testing::DeviceTest {};

TEST_P(TensorDeviceTest, AllocatesOnTheDeviceAndRejectsHostAccess) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({1000, 3}, DType::kF16, device()));
  EXPECT_EQ(t.device(), device());
  EXPECT_NE(t.raw_data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kAllocationAlignment, 0u);
  if (device().is_cuda()) {
    EXPECT_TRUE(absl::IsInvalidArgument(t.host_span<Float16>().status()));
  }
}

USINE_INSTANTIATE_DEVICE_TESTS(TensorDeviceTest);

}  // namespace
}  // namespace usine
