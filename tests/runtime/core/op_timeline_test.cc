#include "runtime/core/op_timeline.h"

#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/device.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/elementwise.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST(OpTimeline, EachSegmentLastsUntilTheNextMarkAndNamesAreSummedHeaviestFirst) {
  ASSERT_OK(OpTimeline::Start(Device::Cpu()));
  MarkOp("forward", Device::Cpu());
  SleepMs(100);
  MarkOp("optimizer", Device::Cpu());
  SleepMs(10);
  MarkOp("forward", Device::Cpu());
  SleepMs(100);
  ASSERT_OK_AND_ASSIGN(const std::vector<OpTime> ops, OpTimeline::Stop());
  ASSERT_THAT(ops, ElementsAre(Field(&OpTime::name, "forward"), Field(&OpTime::name, "optimizer"),
                               Field(&OpTime::name, std::string(kUnmarkedOp))));
  EXPECT_EQ(ops[0].count, 2);
  EXPECT_GE(ops[0].milliseconds, 200.0);
  EXPECT_EQ(ops[1].count, 1);
  EXPECT_GE(ops[1].milliseconds, 10.0);
  // The first forward ends at the optimizer's mark: its 100 ms are not the optimizer's (the
  // margin leaves room for a 10 ms sleep that overshoots on a loaded machine).
  EXPECT_LT(ops[1].milliseconds, 100.0);
  EXPECT_EQ(ops[2].count, 1);
}

TEST(OpTimeline, MarksWhileStoppedOrForAnotherDeviceAreIgnored) {
  MarkOp("before", Device::Cpu());  // No timeline runs: a no-op.
  ASSERT_OK(OpTimeline::Start(Device::Cpu()));
  MarkOp("cpu", Device::Cpu());
  MarkOp("elsewhere", Device::Cuda(0));  // Not Start's device: ignored, no CUDA needed.
  ASSERT_OK_AND_ASSIGN(const std::vector<OpTime> ops, OpTimeline::Stop());
  std::vector<std::string> names;
  for (const OpTime& op : ops) names.push_back(op.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("cpu", std::string(kUnmarkedOp)));
  MarkOp("after", Device::Cpu());
  EXPECT_EQ(OpTimeline::Stop().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(OpTimeline, OneTimelineAtATime) {
  ASSERT_OK(OpTimeline::Start(Device::Cpu()));
  const absl::Status second = OpTimeline::Start(Device::Cpu());
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.message(), ::testing::HasSubstr("already"));
  ASSERT_OK(OpTimeline::Stop().status());
  ASSERT_OK(OpTimeline::Start(Device::Cpu()));  // Stop ended it: a new one may begin.
  ASSERT_OK(OpTimeline::Stop().status());
}

// On a GPU a segment times the device's work on its default stream, not the launch: a fill
// of 1 GiB takes far longer on the device than enqueueing it takes on the host.
TEST(OpTimelineGpuTest, SegmentsTimeTheDevicesWork) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor big, Tensor::Empty({int64_t{1} << 28}, DType::kF32, gpu));
  ASSERT_OK(OpTimeline::Start(gpu));
  MarkOp("fill", gpu);
  for (int i = 0; i < 20; ++i) ASSERT_OK(Fill(big, 1.0, Stream::Default(gpu)));
  MarkOp("nothing", gpu);
  ASSERT_OK_AND_ASSIGN(const std::vector<OpTime> ops, OpTimeline::Stop());
  ASSERT_GE(ops.size(), 2u);
  EXPECT_EQ(ops[0].name, "fill");
  EXPECT_GT(ops[0].milliseconds, 1.0);  // 20 GiB written: several ms at any HBM rate.
}

}  // namespace
}  // namespace usine
