#include "runtime/core/stream.h"

#include <thread>

#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

class StreamTest : public testing::DeviceTest {};

TEST_P(StreamTest, CreateRecordWaitSynchronize) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  EXPECT_EQ(stream.device(), device());
  EXPECT_EQ(stream.is_host(), device().is_cpu());
  ASSERT_OK_AND_ASSIGN(Event event, Event::Create(device()));
  ASSERT_OK(event.Record(stream));
  ASSERT_OK(stream.WaitFor(event));
  ASSERT_OK(event.Synchronize());
  ASSERT_OK_AND_ASSIGN(bool done, event.IsComplete());
  EXPECT_TRUE(done);
  ASSERT_OK(stream.Synchronize());
}

TEST_P(StreamTest, TimingEventsMeasureElapsedTime) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  ASSERT_OK_AND_ASSIGN(Event start, Event::Create(device(), /*enable_timing=*/true));
  ASSERT_OK_AND_ASSIGN(Event end, Event::Create(device(), /*enable_timing=*/true));
  ASSERT_OK(start.Record(stream));
  if (device().is_cpu()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_OK(end.Record(stream));
  ASSERT_OK(end.Synchronize());
  ASSERT_OK_AND_ASSIGN(float ms, end.ElapsedMillisecondsSince(start));
  EXPECT_GE(ms, 0.0f);
  if (device().is_cpu()) {
    EXPECT_GE(ms, 19.0f);
  }
  ASSERT_OK_AND_ASSIGN(Event untimed, Event::Create(device()));
  EXPECT_TRUE(absl::IsFailedPrecondition(untimed.ElapsedMillisecondsSince(start).status()));
}

TEST_P(StreamTest, MovedFromStreamsAndEventsAreSafeToDestroy) {
  ASSERT_OK_AND_ASSIGN(Stream a, Stream::Create(device()));
  StreamHandle handle = a.handle();
  Stream b = std::move(a);
  EXPECT_EQ(b.handle(), handle);
  ASSERT_OK_AND_ASSIGN(Stream c, Stream::Create(device()));
  c = std::move(b);  // c's old stream is released by b.
  EXPECT_EQ(c.handle(), handle);
  ASSERT_OK(c.Synchronize());
  ASSERT_OK_AND_ASSIGN(Event e1, Event::Create(device()));
  Event e2 = std::move(e1);
  ASSERT_OK(e2.Record(c));
}

TEST_P(StreamTest, RecordingOnAnotherDevicesStreamIsAnError) {
  ASSERT_OK_AND_ASSIGN(Event event, Event::Create(device()));
  const Stream other = device().is_cpu() ? Stream::Default(Device::Cuda(0)) : Stream::Host();
  EXPECT_TRUE(absl::IsInvalidArgument(event.Record(other)));
}

// Default is where a device's work goes unless told otherwise: the host stream for the cpu,
// so that callers need not tell the two apart.
TEST_P(StreamTest, TheDefaultStreamIsTheDevicesAndTheHostStreamForTheCpu) {
  const Stream stream = Stream::Default(device());
  EXPECT_EQ(stream.device(), device());
  EXPECT_EQ(stream.is_host(), device().is_cpu());
  ASSERT_OK_AND_ASSIGN(Event event, Event::Create(device()));
  ASSERT_OK(event.Record(stream));
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(bool done, event.IsComplete());
  EXPECT_TRUE(done);
}

USINE_INSTANTIATE_DEVICE_TESTS(StreamTest);

TEST(Stream, CudaStreamsNeedADevice) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "this machine has a CUDA device";
  EXPECT_TRUE(absl::IsFailedPrecondition(Stream::Create(Device::Cuda(0)).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(Event::Create(Device::Cuda(0)).status()));
}

}  // namespace
}  // namespace usine
