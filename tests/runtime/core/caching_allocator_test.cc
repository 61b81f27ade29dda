#include "runtime/core/caching_allocator.h"

#include <cstdint>
#include <map>
#include <set>

#include "gtest/gtest.h"

#if USINE_CUDA_EMULATED
#include <cuda_runtime_api.h>
#endif

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using core_internal::DeviceMemoryBackend;
using core_internal::StreamMarker;

// A device whose streams run only when the test says so: a marker is done once the test
// has "finished" its stream's work up to that marker. Memory is real host memory, so
// ASan catches any use of a block after the allocator released it.
class ScriptedDevice final : public DeviceMemoryBackend {
 public:
  struct State {
    std::map<StreamHandle, int64_t> enqueued;  // Work items enqueued per stream.
    std::map<StreamHandle, int64_t> finished;  // ... of which finished.
    std::map<intptr_t, std::pair<StreamHandle, int64_t>> markers;
    intptr_t next_marker = 1;
    size_t capacity = SIZE_MAX;  // Bytes the device may hand out.
    size_t in_use = 0;
    std::map<void*, size_t> sizes;
    int mallocs = 0, frees = 0, syncs = 0;
  };
  explicit ScriptedDevice(State* state) : s_(state) {}

  absl::StatusOr<void*> Malloc(size_t bytes) override {
    if (s_->in_use + bytes > s_->capacity) return absl::ResourceExhaustedError("device full");
    void* p = std::malloc(bytes);
    s_->in_use += bytes;
    s_->sizes[p] = bytes;
    ++s_->mallocs;
    return p;
  }
  void Free(void* ptr) override {
    s_->in_use -= s_->sizes.at(ptr);
    s_->sizes.erase(ptr);
    std::free(ptr);
    ++s_->frees;
  }
  absl::StatusOr<StreamMarker> RecordMarker(StreamHandle stream) override {
    const intptr_t id = s_->next_marker++;
    s_->markers[id] = {stream, s_->enqueued[stream]};
    return reinterpret_cast<StreamMarker>(id);
  }
  absl::StatusOr<bool> MarkerDone(StreamMarker marker) override {
    const auto& [stream, point] = s_->markers.at(reinterpret_cast<intptr_t>(marker));
    return s_->finished[stream] >= point;
  }
  void ReleaseMarker(StreamMarker marker) override {
    s_->markers.erase(reinterpret_cast<intptr_t>(marker));
  }
  absl::Status SynchronizeDevice() override {
    ++s_->syncs;
    s_->finished = s_->enqueued;
    return absl::OkStatus();
  }

 private:
  State* s_;
};

StreamHandle FakeStream(int i) { return reinterpret_cast<StreamHandle>(static_cast<intptr_t>(i)); }

class CachingAllocatorTest : public ::testing::Test {
 protected:
  CachingAllocatorTest()
      : allocator_(Device::Cuda(0), std::make_unique<ScriptedDevice>(&device_)) {}
  ScriptedDevice::State device_;
  CachingAllocator allocator_;
};

TEST(CachingAllocatorSizeClass, RoundsUpWithBoundedWaste) {
  EXPECT_EQ(CachingAllocator::SizeClass(1), 512u);
  EXPECT_EQ(CachingAllocator::SizeClass(512), 512u);
  EXPECT_EQ(CachingAllocator::SizeClass(513), 1024u);
  EXPECT_EQ(CachingAllocator::SizeClass(1 << 20), 1u << 20);
  EXPECT_EQ(CachingAllocator::SizeClass((1 << 20) + 1), (1u << 20) + (1u << 18));
  EXPECT_EQ(CachingAllocator::SizeClass(3u << 20), 3u << 20);
  EXPECT_EQ(CachingAllocator::SizeClass((5u << 20) + 7), 6u << 20);
  for (size_t bytes = 1; bytes < (size_t{1} << 34); bytes = bytes * 3 + 1) {
    const size_t c = CachingAllocator::SizeClass(bytes);
    EXPECT_GE(c, bytes);
    if (bytes > (1u << 20)) {
      EXPECT_LT(c, bytes + bytes / 4) << bytes;
    }
  }
}

TEST_F(CachingAllocatorTest, ReusesAFreedBlockOnItsStreamWithoutWaiting) {
  ASSERT_OK_AND_ASSIGN(void* a, allocator_.Allocate(1000, FakeStream(1)));
  allocator_.Deallocate(a);
  ASSERT_OK_AND_ASSIGN(void* b, allocator_.Allocate(900, FakeStream(1)));  // Same class.
  EXPECT_EQ(a, b);
  EXPECT_EQ(device_.mallocs, 1);
  EXPECT_EQ(allocator_.stats().cache_hits, 1);
  // Another stream does not get the block: its work is not ordered after the old user's.
  ASSERT_OK_AND_ASSIGN(void* c, allocator_.Allocate(900, FakeStream(2)));
  EXPECT_NE(c, b);
  allocator_.Deallocate(b);
  allocator_.Deallocate(c);
}

TEST_F(CachingAllocatorTest, BlockUsedOnAnotherStreamWaitsUntilThatStreamPassesTheFree) {
  const StreamHandle compute = FakeStream(1), comm = FakeStream(2);
  ASSERT_OK_AND_ASSIGN(void* grads, allocator_.Allocate(4096, compute));
  ASSERT_OK(allocator_.RecordStream(grads, comm));
  device_.enqueued[comm] = 5;  // The all-reduce reading `grads` is queued on comm.
  allocator_.Deallocate(grads);

  ASSERT_OK_AND_ASSIGN(void* next, allocator_.Allocate(4096, compute));
  EXPECT_NE(next, grads) << "reused while comm may still read it";
  device_.finished[comm] = 4;
  ASSERT_OK_AND_ASSIGN(void* again, allocator_.Allocate(4096, compute));
  EXPECT_NE(again, grads) << "reused before comm reached the free";
  device_.finished[comm] = 5;
  ASSERT_OK_AND_ASSIGN(void* reused, allocator_.Allocate(4096, compute));
  EXPECT_EQ(reused, grads);
  EXPECT_TRUE(device_.markers.empty()) << "markers are released once passed";
  for (void* p : {next, again, reused}) allocator_.Deallocate(p);
}

TEST_F(CachingAllocatorTest, StatisticsTrackAllocatedReservedAndPeak) {
  ASSERT_OK_AND_ASSIGN(void* a, allocator_.Allocate(100, nullptr));      // 512
  ASSERT_OK_AND_ASSIGN(void* b, allocator_.Allocate(3 << 20, nullptr));  // 3 MiB
  CachingAllocatorStats s = allocator_.stats();
  EXPECT_EQ(s.allocated_bytes, 512u + (3u << 20));
  EXPECT_EQ(s.reserved_bytes, 512u + (3u << 20));
  allocator_.Deallocate(b);
  s = allocator_.stats();
  EXPECT_EQ(s.allocated_bytes, 512u);
  EXPECT_EQ(s.reserved_bytes, 512u + (3u << 20));  // Cached, not returned.
  EXPECT_EQ(s.peak_allocated_bytes, 512u + (3u << 20));
  ASSERT_OK(allocator_.EmptyCache());
  s = allocator_.stats();
  EXPECT_EQ(s.reserved_bytes, 512u);
  EXPECT_EQ(device_.frees, 1);
  EXPECT_EQ(s.allocations, 2);
  EXPECT_EQ(s.device_allocations, 2);
  allocator_.Deallocate(a);
  ASSERT_OK_AND_ASSIGN(void* zero, allocator_.Allocate(0, nullptr));
  EXPECT_EQ(zero, nullptr);
}

TEST_F(CachingAllocatorTest, OutOfMemoryReleasesTheCacheAndRetries) {
  device_.capacity = 4 << 20;
  ASSERT_OK_AND_ASSIGN(void* a, allocator_.Allocate(3 << 20, FakeStream(1)));
  allocator_.Deallocate(a);  // Cached on stream 1: 3 MiB of the 4 stay reserved.
  ASSERT_OK_AND_ASSIGN(void* b, allocator_.Allocate(2 << 20, FakeStream(2)));
  EXPECT_EQ(device_.syncs, 1);
  EXPECT_EQ(device_.frees, 1);
  EXPECT_EQ(allocator_.stats().reserved_bytes, 2u << 20);
  const absl::Status full = allocator_.Allocate(3 << 20, FakeStream(2)).status();
  EXPECT_TRUE(absl::IsResourceExhausted(full));
  EXPECT_NE(full.message().find("allocating 3145728 bytes on cuda:0"), absl::string_view::npos)
      << full;
  allocator_.Deallocate(b);
}

TEST_F(CachingAllocatorTest, RecordStreamOfAnUnknownPointerIsAnError) {
  int x = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(allocator_.RecordStream(&x, FakeStream(1))));
}

// The real allocator on a real device.
TEST(CachingAllocatorGpuTest, AllocatesAndReusesOnARealDevice) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  ASSERT_OK_AND_ASSIGN(CachingAllocator * allocator, CudaCachingAllocator(0));
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(Device::Cuda(0)));
  ASSERT_OK_AND_ASSIGN(void* a, allocator->Allocate(10 << 20, stream.handle()));
  const int64_t before = allocator->stats().device_allocations;
  allocator->Deallocate(a);
  ASSERT_OK_AND_ASSIGN(void* b, allocator->Allocate(10 << 20, stream.handle()));
  EXPECT_EQ(a, b);
  EXPECT_EQ(allocator->stats().device_allocations, before);
  ASSERT_OK_AND_ASSIGN(Stream other, Stream::Create(Device::Cuda(0)));
  ASSERT_OK(allocator->RecordStream(b, other.handle()));
  allocator->Deallocate(b);
  ASSERT_OK(other.Synchronize());
  ASSERT_OK(allocator->EmptyCache());
}

#if USINE_CUDA_EMULATED
// Under the CUDA emulator, which reports two calls on different streams that touch the same
// bytes with nothing ordering them (a case with such a report fails): a block freed while
// another stream still uses it (RecordStream) goes back to its stream only once that use is
// done, so that writing the block again on its own stream races with nothing. (Without the
// RecordStream the emulator reports the race.)
TEST(CachingAllocatorGpuTest, ABlockUsedOnAnotherStreamIsReusedOnlyAfterThatUse) {
  ASSERT_OK_AND_ASSIGN(CachingAllocator * allocator, CudaCachingAllocator(0));
  ASSERT_OK_AND_ASSIGN(Stream owner, Stream::Create(Device::Cuda(0)));
  ASSERT_OK_AND_ASSIGN(Stream other, Stream::Create(Device::Cuda(0)));
  constexpr size_t kBytes = 1 << 16;
  ASSERT_OK_AND_ASSIGN(void* used, allocator->Allocate(kBytes, owner.handle()));
  ASSERT_EQ(cudaMemsetAsync(used, 1, kBytes, other.handle()), cudaSuccess);
  ASSERT_OK(allocator->RecordStream(used, other.handle()));
  allocator->Deallocate(used);
  ASSERT_OK_AND_ASSIGN(void* again, allocator->Allocate(kBytes, owner.handle()));
  EXPECT_EQ(again, used);  // The emulator's events are complete once recorded.
  ASSERT_EQ(cudaMemsetAsync(again, 2, kBytes, owner.handle()), cudaSuccess);
  allocator->Deallocate(again);
  ASSERT_OK(owner.Synchronize());
  ASSERT_OK(other.Synchronize());
}
#endif

}  // namespace
}  // namespace usine
