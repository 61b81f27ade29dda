#include "runtime/core/allocator.h"

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

TEST(HostAllocator, AlignedWritableAndZeroBytesIsNull) {
  Allocator& host = HostAllocator();
  EXPECT_EQ(host.device(), Device::Cpu());
  for (size_t bytes : {1u, 3u, 255u, 256u, 4097u, 1u << 20}) {
    ASSERT_OK_AND_ASSIGN(void* p, host.Allocate(bytes, nullptr));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kAllocationAlignment, 0u);
    std::memset(p, 0xab, bytes);  // ASan reports a short allocation.
    host.Deallocate(p);
  }
  ASSERT_OK_AND_ASSIGN(void* none, host.Allocate(0, nullptr));
  EXPECT_EQ(none, nullptr);
  host.Deallocate(nullptr);
}

TEST(HostAllocator, ImpossibleSizeIsResourceExhausted) {
  EXPECT_TRUE(absl::IsResourceExhausted(HostAllocator().Allocate(SIZE_MAX / 2, nullptr).status()));
  EXPECT_TRUE(absl::IsResourceExhausted(HostAllocator().Allocate(SIZE_MAX - 1, nullptr).status()));
}

TEST(PinnedHostAllocator, PinsExactlyWhenAGpuIsPresent) {
  PinnedMemoryAllocator& pinned = PinnedHostAllocator();
  EXPECT_EQ(pinned.pins_memory(), CudaDeviceCount() > 0);
  ASSERT_OK_AND_ASSIGN(void* p, pinned.Allocate(1 << 16, nullptr));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kAllocationAlignment, 0u);
  std::memset(p, 1, 1 << 16);
  pinned.Deallocate(p);
  ASSERT_OK_AND_ASSIGN(Tensor staging, Tensor::Empty({1024}, DType::kF32, pinned));
  EXPECT_EQ(staging.device(), Device::Cpu());
}

TEST(DefaultAllocator, IsTheHostAllocatorForTheCpu) {
  ASSERT_OK_AND_ASSIGN(Allocator * a, DefaultAllocator(Device::Cpu()));
  EXPECT_EQ(a, &HostAllocator());
  EXPECT_TRUE(
      absl::IsFailedPrecondition(DefaultAllocator(Device::Cuda(CudaDeviceCount())).status()));
}

TEST(HostAllocator, ConcurrentUseFromManyThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 1000; ++i) {
        absl::StatusOr<Tensor> x = Tensor::Empty({t + 1, i % 17 + 1}, DType::kF32);
        ASSERT_TRUE(x.ok());
        std::memset(x->raw_data(), 0, x->nbytes());
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace usine
