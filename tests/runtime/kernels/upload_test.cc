#include "runtime/kernels/upload.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/kernels/copy.h"
#include "tests/testing/device_test.h"

#if USINE_CUDA_EMULATED
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#elif USINE_WITH_CUDA
#include <chrono>
#include <thread>

#include <cuda_runtime_api.h>
#endif

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

class UploadTest : public testing::DeviceTest {};

// More uploads than the ring has slots, growing past a slot's first size, each from one host
// buffer that is overwritten as soon as Upload returns: every destination holds what the
// buffer held at its call.
TEST_P(UploadTest, EachUploadKeepsWhatTheSourceHeldAtTheCall) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  constexpr int kUploads = 3 * kUploadSlots;
  std::vector<int32_t> source(1 << 17);
  std::vector<Tensor> uploaded;
  for (int u = 0; u < kUploads; ++u) {
    const int64_t n = 1000 + int64_t{u} * 3000;  // From 4 KB to 280 KB.
    std::iota(source.begin(), source.begin() + n, u * 1000000);
    ASSERT_OK_AND_ASSIGN(Tensor host, Tensor::Wrap(source.data(), {n}, DType::kI32, Device::Cpu()));
    ASSERT_OK_AND_ASSIGN(Tensor on_device,
                         Tensor::Empty({n}, DType::kI32, device(), stream.handle()));
    ASSERT_OK(Upload(host, on_device, stream));
    std::fill(source.begin(), source.end(), -1);
    uploaded.push_back(on_device);
  }
  ASSERT_OK(stream.Synchronize());
  for (int u = 0; u < kUploads; ++u) {
    ASSERT_OK_AND_ASSIGN(std::vector<int32_t> got, ReadTensor<int32_t>(uploaded[u]));
    std::vector<int32_t> want(got.size());
    std::iota(want.begin(), want.end(), u * 1000000);
    ASSERT_EQ(got, want) << "upload " << u;
  }
}

TEST_P(UploadTest, OnTheHostStreamItIsASynchronousCopy) {
  ASSERT_OK_AND_ASSIGN(Tensor host, MakeTensor<float>(Device::Cpu(), {3}, {1, 2, 3}));
  ASSERT_OK_AND_ASSIGN(Tensor on_device, Tensor::Empty({3}, DType::kF32, device()));
  ASSERT_OK(Upload(host, on_device, Stream::Host()));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(on_device));
  EXPECT_EQ(got, (std::vector<float>{1, 2, 3}));
}

TEST_P(UploadTest, MismatchesAreErrors) {
  ASSERT_OK_AND_ASSIGN(Tensor host, MakeTensor<float>(Device::Cpu(), {3}, {1, 2, 3}));
  ASSERT_OK_AND_ASSIGN(Tensor on_device, Tensor::Empty({3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor longer, Tensor::Empty({4}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor ints, Tensor::Empty({3}, DType::kI32, device()));
  EXPECT_THAT(Upload(host, longer, Stream::Host()).message(), HasSubstr("Upload src"));
  EXPECT_THAT(Upload(host, ints, Stream::Host()).message(), HasSubstr("Upload src"));
  if (device().is_cuda()) {
    EXPECT_THAT(Upload(on_device, on_device, Stream::Default(device())).message(),
                HasSubstr("expected a cpu tensor"));
  }
}

USINE_INSTANTIATE_DEVICE_TESTS(UploadTest);

#if USINE_CUDA_EMULATED
using testing::cuda_emulator::Statistics;
using testing::cuda_emulator::StatisticsOf;

// Once the ring's slots hold an upload's size, uploads never copy from pageable memory and
// never wait: the emulator's copies are done once enqueued, as a device keeping up would be.
TEST(UploadGpuTest, AWarmRingNeitherWaitsNorCopiesFromPageableMemory) {
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(gpu));
  std::vector<int32_t> ids(100000, 7);
  ASSERT_OK_AND_ASSIGN(Tensor host, Tensor::Wrap(ids.data(), {100000}, DType::kI32, Device::Cpu()));
  ASSERT_OK_AND_ASSIGN(Tensor on_device, Tensor::Empty({100000}, DType::kI32, gpu));
  for (int u = 0; u < kUploadSlots; ++u) ASSERT_OK(Upload(host, on_device, stream));
  const Statistics warm = StatisticsOf([&] {
    for (int u = 0; u < 2 * kUploadSlots; ++u) ASSERT_OK(Upload(host, on_device, stream));
  });
  EXPECT_EQ(warm.host_waits, 0);
  EXPECT_EQ(warm.pageable_uploads, 0);
  const Statistics plain = StatisticsOf([&] { ASSERT_OK(Copy(host, on_device, stream)); });
  EXPECT_EQ(plain.pageable_uploads, 1);  // What Upload avoids.
  ASSERT_OK(stream.Synchronize());
}

// A training step uploads a few arrays of different sizes in turn (ids, targets, the
// embedding gradient's groups), so every slot of the ring meets the largest in its first
// laps and grows: growing must not free page-locked memory, which synchronises the device.
TEST(UploadGpuTest, SlotsGrowWithoutWaitingForTheDevice) {
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(gpu));
  constexpr int64_t kLarge = kMaxStagedUploadBytes / sizeof(int32_t);
  std::vector<int32_t> values(kLarge, 5);
  std::vector<Tensor> on_device;
  for (const int64_t n : {int64_t{1000}, int64_t{30000}, kLarge}) {
    ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({n}, DType::kI32, gpu));
    on_device.push_back(t);
  }
  const Statistics laps = StatisticsOf([&] {
    for (int u = 0; u < 4 * kUploadSlots; ++u) {
      const Tensor& dst = on_device[u % on_device.size()];
      ASSERT_OK_AND_ASSIGN(Tensor host,
                           Tensor::Wrap(values.data(), dst.shape(), DType::kI32, Device::Cpu()));
      ASSERT_OK(Upload(host, dst, stream));
    }
  });
  EXPECT_EQ(laps.host_waits, 0);
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> got, ReadTensor<int32_t>(on_device.back()));
  EXPECT_EQ(got, values);
}
#elif USINE_WITH_CUDA
// On a GPU: uploads queued behind a stream that a host function holds for 100 ms, twice as
// many as the ring has slots, each from a source overwritten at once. A slot taken again
// before its last copy ran would hand that copy the later upload's values.
TEST(UploadGpuTest, UploadsQueuedBehindABusyStreamKeepTheirValues) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(gpu));
  ASSERT_EQ(
      cudaLaunchHostFunc(
          stream.handle(),
          [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }, nullptr),
      cudaSuccess);
  constexpr int kUploads = 2 * kUploadSlots;
  std::vector<int32_t> source(4096);
  std::vector<Tensor> uploaded;
  for (int u = 0; u < kUploads; ++u) {
    std::fill(source.begin(), source.end(), u);
    ASSERT_OK_AND_ASSIGN(Tensor host,
                         Tensor::Wrap(source.data(), {4096}, DType::kI32, Device::Cpu()));
    ASSERT_OK_AND_ASSIGN(Tensor on_device,
                         Tensor::Empty({4096}, DType::kI32, gpu, stream.handle()));
    ASSERT_OK(Upload(host, on_device, stream));
    uploaded.push_back(on_device);
  }
  ASSERT_OK(stream.Synchronize());
  for (int u = 0; u < kUploads; ++u) {
    ASSERT_OK_AND_ASSIGN(std::vector<int32_t> got, ReadTensor<int32_t>(uploaded[u]));
    ASSERT_EQ(got, std::vector<int32_t>(4096, u)) << "upload " << u;
  }
}
#endif

}  // namespace
}  // namespace usine
