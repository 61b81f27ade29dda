// The NCCL backend in a world of one on cuda:0 (NCCL runs one rank per GPU, so one GPU holds
// one rank): every collective must hand back exactly what the only rank gave, in place and out
// of place, on the communicator's stream and on the caller's. Inputs are small integers (exact
// in bf16 and f16) and, for i64, values beyond 2^32; outputs start as a sentinel, so a call
// that moved nothing fails. The suites named ...GpuTest skip themselves without a GPU.
#include "collectives/nccl/nccl_communicator.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/watchdog.h"
#include "runtime/core/caching_allocator.h"
#include "runtime/kernels/copy.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeTensor;
using testing::ReadBytes;

constexpr Device kGpu = Device::Cuda(0);
constexpr double kSentinel = 99;

// Element i of the test inputs: exact in every dtype under test.
double Value(DType dtype, int64_t i) {
  const double small = static_cast<double>((i * 7) % 17) - 8;
  return dtype == DType::kI64 ? small + static_cast<double>(int64_t{1} << 40) * (i % 3) : small;
}

std::vector<double> Values(DType dtype, int64_t n) {
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = Value(dtype, i);
  return values;
}

// `values` as a tensor of `dtype` on `device`.
absl::StatusOr<Tensor> Filled(Device device, DType dtype, const std::vector<double>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty({n}, dtype));
  for (int64_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(values[i]);
    switch (dtype) {
      case DType::kF32:
        static_cast<float*>(host.raw_data())[i] = f;
        break;
      case DType::kBF16:
        static_cast<BFloat16*>(host.raw_data())[i] = BFloat16::FromFloat(f);
        break;
      case DType::kF16:
        static_cast<Float16*>(host.raw_data())[i] = Float16::FromFloat(f);
        break;
      case DType::kI32:
        static_cast<int32_t*>(host.raw_data())[i] = static_cast<int32_t>(values[i]);
        break;
      case DType::kI64:
        static_cast<int64_t*>(host.raw_data())[i] = static_cast<int64_t>(values[i]);
        break;
      case DType::kU16:
        static_cast<uint16_t*>(host.raw_data())[i] = static_cast<uint16_t>(values[i]);
        break;
      case DType::kU8:
        static_cast<uint8_t*>(host.raw_data())[i] = static_cast<uint8_t>(values[i]);
        break;
      case DType::kF64:
        static_cast<double*>(host.raw_data())[i] = values[i];
        break;
    }
  }
  return MakeTensor(device, host.shape(), dtype, host.raw_data());
}

// The elements of `t`, read back to the host, as doubles.
absl::StatusOr<std::vector<double>> Read(const Tensor& t) {
  ASSIGN_OR_RETURN(std::vector<char> bytes, ReadBytes(t));
  std::vector<double> values(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    const char* p = bytes.data() + i * DTypeSize(t.dtype());
    switch (t.dtype()) {
      case DType::kF32:
        values[i] = *reinterpret_cast<const float*>(p);
        break;
      case DType::kBF16:
        values[i] = reinterpret_cast<const BFloat16*>(p)->ToFloat();
        break;
      case DType::kF16:
        values[i] = reinterpret_cast<const Float16*>(p)->ToFloat();
        break;
      case DType::kI32:
        values[i] = *reinterpret_cast<const int32_t*>(p);
        break;
      case DType::kI64:
        values[i] = static_cast<double>(*reinterpret_cast<const int64_t*>(p));
        break;
      case DType::kU16:
        values[i] = *reinterpret_cast<const uint16_t*>(p);
        break;
      case DType::kU8:
        values[i] = *reinterpret_cast<const uint8_t*>(p);
        break;
      case DType::kF64:
        values[i] = *reinterpret_cast<const double*>(p);
        break;
    }
  }
  return values;
}

TEST(NcclCommunicator, RejectsAHostDevice) {
  const absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm =
      NcclCommunicator::Create(nullptr, Device::Cpu(), "world");
  ASSERT_FALSE(comm.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(comm.status()));
  EXPECT_THAT(std::string(comm.status().message()), HasSubstr("NCCL needs a CUDA device"));
}

class NcclCommunicatorGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    ASSERT_OK_AND_ASSIGN(comm_, NcclCommunicator::Create(nullptr, kGpu, "world"));
  }

  std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclCommunicatorGpuTest, IsAWorldOfOneOnItsDevice) {
  EXPECT_EQ(comm_->rank(), 0);
  EXPECT_EQ(comm_->size(), 1);
  EXPECT_EQ(comm_->backend(), "nccl");
  EXPECT_EQ(comm_->name(), "world");
  EXPECT_EQ(comm_->device(), kGpu);
  EXPECT_EQ(comm_->stream().device(), kGpu);
}

constexpr DType kReductionTypes[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32,
                                     DType::kI64};

std::vector<ReduceOp> OpsFor(DType dtype) {
  if (IsFloatingPoint(dtype)) return {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax};
  return {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin};
}

TEST_F(NcclCommunicatorGpuTest, AllReduceOutOfPlaceWritesTheOnlyRanksValues) {
  constexpr int64_t kN = 1000;
  for (DType dtype : kReductionTypes) {
    for (ReduceOp op : OpsFor(dtype)) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", ReduceOpName(op)));
      ASSERT_OK_AND_ASSIGN(Tensor send, Filled(kGpu, dtype, Values(dtype, kN)));
      ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(kGpu, dtype, std::vector<double>(kN, kSentinel)));
      ASSERT_OK(comm_->AllReduce(send, recv, op));
      ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
      EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));
      ASSERT_OK_AND_ASSIGN(std::vector<double> sent, Read(send));
      EXPECT_THAT(sent, ElementsAreArray(Values(dtype, kN)));
    }
  }
}

TEST_F(NcclCommunicatorGpuTest, AllReduceInPlaceKeepsTheOnlyRanksValues) {
  constexpr int64_t kN = 1000;
  for (DType dtype : kReductionTypes) {
    for (ReduceOp op : OpsFor(dtype)) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", ReduceOpName(op)));
      ASSERT_OK_AND_ASSIGN(Tensor tensor, Filled(kGpu, dtype, Values(dtype, kN)));
      ASSERT_OK(comm_->AllReduce(tensor, op));
      ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(tensor));
      EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));
    }
  }
}

TEST_F(NcclCommunicatorGpuTest, ReduceScatterOutOfPlaceAndInPlace) {
  constexpr int64_t kN = 257;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kI64}) {
    SCOPED_TRACE(DTypeName(dtype));
    ASSERT_OK_AND_ASSIGN(Tensor send, Filled(kGpu, dtype, Values(dtype, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(kGpu, dtype, std::vector<double>(kN, kSentinel)));
    ASSERT_OK(comm_->ReduceScatter(send, recv, ReduceOp::kSum));
    ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
    EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));

    // In place: recv is chunk rank() (the only one) of send.
    ASSERT_OK_AND_ASSIGN(Tensor chunk, send.View(comm_->rank() * kN, {kN}));
    ASSERT_OK(comm_->ReduceScatter(send, chunk, ReduceOp::kMax));
    ASSERT_OK_AND_ASSIGN(got, Read(chunk));
    EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));
  }
}

TEST_F(NcclCommunicatorGpuTest, AllGatherOutOfPlaceAndInPlace) {
  constexpr int64_t kN = 257;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kI64}) {
    SCOPED_TRACE(DTypeName(dtype));
    ASSERT_OK_AND_ASSIGN(Tensor send, Filled(kGpu, dtype, Values(dtype, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(kGpu, dtype, std::vector<double>(kN, kSentinel)));
    ASSERT_OK(comm_->AllGather(send, recv));
    ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
    EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));

    // In place: send is chunk rank() of recv.
    ASSERT_OK_AND_ASSIGN(Tensor whole, Filled(kGpu, dtype, Values(dtype, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor own, whole.View(comm_->rank() * kN, {kN}));
    ASSERT_OK(comm_->AllGather(own, whole));
    ASSERT_OK_AND_ASSIGN(got, Read(whole));
    EXPECT_THAT(got, ElementsAreArray(Values(dtype, kN)));
  }
}

TEST_F(NcclCommunicatorGpuTest, BroadcastFromTheOnlyRankKeepsItsBytesOfAnyDType) {
  std::vector<double> bytes(300);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<double>((i * 31) % 256);
  ASSERT_OK_AND_ASSIGN(Tensor tensor, Filled(kGpu, DType::kU8, bytes));
  ASSERT_OK(comm_->Broadcast(tensor, /*root=*/0));
  ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(tensor));
  EXPECT_THAT(got, ElementsAreArray(bytes));
}

TEST_F(NcclCommunicatorGpuTest, BarrierCompletes) {
  ASSERT_OK(comm_->Barrier());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Work> work, comm_->BarrierAsync());
  ASSERT_OK(work->Wait());
  ASSERT_OK_AND_ASSIGN(const bool done, work->Test());
  EXPECT_TRUE(done);
}

TEST_F(NcclCommunicatorGpuTest, AsyncAllReduceOnAUserStreamFollowsTheWorkBeforeIt) {
  constexpr int64_t kN = 1 << 20;
  ASSERT_OK_AND_ASSIGN(Stream user, Stream::Create(kGpu));
  ASSERT_OK_AND_ASSIGN(Tensor host, Filled(Device::Cpu(), DType::kF32, Values(DType::kF32, kN)));
  ASSERT_OK_AND_ASSIGN(Tensor tensor,
                       Filled(kGpu, DType::kF32, std::vector<double>(kN, kSentinel)));
  // The input lands on the user stream; the all-reduce, enqueued after it there, must see it.
  ASSERT_OK(Copy(host, tensor, user));
  CollectiveOptions options;
  options.stream = &user;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Work> work,
                       comm_->AllReduceAsync(tensor, tensor, ReduceOp::kSum, options));
  ASSERT_OK(work->Wait());
  ASSERT_OK_AND_ASSIGN(const bool done, work->Test());
  EXPECT_TRUE(done);
  ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(tensor));
  EXPECT_TRUE(got == Values(DType::kF32, kN));  // Not EXPECT_EQ: a million elements.
}

TEST_F(NcclCommunicatorGpuTest, TestReportsCompletionWithoutWaiting) {
  constexpr int64_t kN = 4096;
  ASSERT_OK_AND_ASSIGN(Tensor send, Filled(kGpu, DType::kI64, Values(DType::kI64, kN)));
  ASSERT_OK_AND_ASSIGN(Tensor recv, Filled(kGpu, DType::kI64, std::vector<double>(kN, kSentinel)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Work> work, comm_->AllGatherAsync(send, recv));
  bool done = false;
  while (!done) {
    ASSERT_OK_AND_ASSIGN(done, work->Test());
  }
  ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
  EXPECT_THAT(got, ElementsAreArray(Values(DType::kI64, kN)));
}

// A stream-ordered call returns once enqueued, and the communicator keeps its Work until a
// later call finds it has run. Here no call follows before its deadline passes: the watchdog
// must find that it has run instead of reporting it as stuck.
TEST_F(NcclCommunicatorGpuTest, AStreamOrderedCallNobodyWaitsOnLeavesTheWatchOnceItHasRun) {
  std::mutex mu;
  std::vector<std::string> expired;
  Watchdog::Get().set_expiry_action([&](const std::string& message, ArrivalProbe*) {
    std::lock_guard<std::mutex> lock(mu);
    expired.push_back(message);
  });
  ASSERT_OK_AND_ASSIGN(Stream user, Stream::Create(kGpu));
  ASSERT_OK_AND_ASSIGN(Tensor tensor, Filled(kGpu, DType::kF32, Values(DType::kF32, 4096)));
  const CollectiveOptions options{
      .timeout = absl::Milliseconds(50), .stream = &user, .stream_ordered = true};
  ASSERT_OK(comm_->AllReduce(tensor, ReduceOp::kSum, options));
  ASSERT_OK(user.Synchronize());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  Watchdog::Get().ResetExpiryAction();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(expired, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(tensor));
  EXPECT_THAT(got, ElementsAreArray(Values(DType::kF32, 4096)));
}

#if !USINE_CUDA_EMULATED  // The emulator runs work when it is issued.
// Holds `stream` with a host function until Open(), or until 10 s have passed; destroying it
// opens it and waits for the stream, which the function reads it from.
class StreamGate {
 public:
  explicit StreamGate(const Stream& stream) : stream_(stream) {
    launched_ = cudaLaunchHostFunc(stream.handle(), Wait, &open_);
  }
  ~StreamGate() {
    Open();
    if (launched_ == cudaSuccess) stream_.Synchronize().IgnoreError();
  }
  StreamGate(const StreamGate&) = delete;
  StreamGate& operator=(const StreamGate&) = delete;

  cudaError_t launched() const { return launched_; }
  void Open() { open_.store(true); }

 private:
  static void CUDART_CB Wait(void* open) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!static_cast<std::atomic<bool>*>(open)->load() &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  const Stream& stream_;
  std::atomic<bool> open_{false};
  cudaError_t launched_;
};

// A stream-ordered call returns once enqueued, not once run: here its stream is held by a host
// function until after the call has returned, and the tensor it reduces is dropped at once; the
// communicator keeps that tensor's memory until a later call finds the call has run. A call
// that waited for the GPU would return only once the gate gave up, its stream done.
TEST_F(NcclCommunicatorGpuTest, AStreamOrderedCallReturnsBeforeItsStreamHasRunIt) {
  constexpr int64_t kN = 1 << 20;
  ASSERT_OK_AND_ASSIGN(CachingAllocator * allocator, CudaCachingAllocator(kGpu.index()));
  ASSERT_OK_AND_ASSIGN(Stream user, Stream::Create(kGpu));
  StreamGate gate(user);
  ASSERT_EQ(gate.launched(), cudaSuccess);
  size_t held = 0;
  {
    ASSERT_OK_AND_ASSIGN(Tensor dropped, Filled(kGpu, DType::kF32, Values(DType::kF32, kN)));
    held = allocator->stats().allocated_bytes;
    ASSERT_OK(
        comm_->AllReduce(dropped, ReduceOp::kSum,
                         {.timeout = absl::Seconds(30), .stream = &user, .stream_ordered = true}));
  }
  EXPECT_EQ(cudaStreamQuery(user.handle()), cudaErrorNotReady);
  cudaGetLastError();  // Clears the not-ready the query left, which later calls would report.
  EXPECT_EQ(allocator->stats().allocated_bytes, held);
  gate.Open();
  ASSERT_OK(user.Synchronize());
  ASSERT_OK(comm_->Barrier());  // Finds the call has run, and lets its tensor go.
  EXPECT_EQ(allocator->stats().allocated_bytes, held - CachingAllocator::SizeClass(kN * 4));
}
#endif

TEST_F(NcclCommunicatorGpuTest, EmptyTensorsCompleteAtOnce) {
  ASSERT_OK_AND_ASSIGN(Tensor empty, Tensor::Empty({0}, DType::kF32, kGpu));
  ASSERT_OK(comm_->AllReduce(empty, ReduceOp::kSum));
  ASSERT_OK(comm_->AllGather(empty, empty));
  ASSERT_OK(comm_->Broadcast(empty, 0));
}

TEST_F(NcclCommunicatorGpuTest, RejectsAStreamOfAnotherDevice) {
  ASSERT_OK_AND_ASSIGN(Tensor tensor, Filled(kGpu, DType::kF32, Values(DType::kF32, 8)));
  const Stream host = Stream::Host();
  CollectiveOptions options;
  options.stream = &host;
  const absl::Status status = comm_->AllReduce(tensor, ReduceOp::kSum, options);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("the stream is on cpu"));
}

TEST_F(NcclCommunicatorGpuTest, RejectsOverlapsThatAreNotInPlace) {
  ASSERT_OK_AND_ASSIGN(Tensor tensor, Filled(kGpu, DType::kF32, Values(DType::kF32, 8)));
  ASSERT_OK_AND_ASSIGN(Tensor front, tensor.View(0, {6}));
  ASSERT_OK_AND_ASSIGN(Tensor back, tensor.View(2, {6}));
  const absl::Status status = comm_->AllReduce(front, back, ReduceOp::kSum);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("overlap"));
  // The communicator is still usable.
  ASSERT_OK(comm_->AllReduce(tensor, ReduceOp::kSum));
}

TEST_F(NcclCommunicatorGpuTest, SplitsIntoWorldsOfOneThatWorkAndSplitAgain) {
  constexpr int64_t kN = 64;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> half, comm_->Split(0, 0, "half"));
  EXPECT_EQ(half->backend(), "nccl");
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(half->rank(), 0);
  EXPECT_EQ(half->size(), 1);
  EXPECT_EQ(half->device(), kGpu);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> quarter, half->Split(3, 7, "quarter"));
  EXPECT_EQ(quarter->size(), 1);
  for (Communicator* comm : {static_cast<Communicator*>(comm_.get()), half.get(), quarter.get()}) {
    SCOPED_TRACE(comm->name());
    ASSERT_OK_AND_ASSIGN(Tensor send, Filled(kGpu, DType::kBF16, Values(DType::kBF16, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor recv,
                         Filled(kGpu, DType::kBF16, std::vector<double>(kN, kSentinel)));
    ASSERT_OK(comm->AllReduce(send, recv, ReduceOp::kAvg));
    ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
    EXPECT_THAT(got, ElementsAreArray(Values(DType::kBF16, kN)));
  }
}

TEST_F(NcclCommunicatorGpuTest, HandsHostTensorsToItsHostTwinAndItsSplitsDoToo) {
  constexpr int64_t kN = 48;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> half, comm_->Split(0, 0, "half"));
  for (Communicator* comm : {static_cast<Communicator*>(comm_.get()), half.get()}) {
    SCOPED_TRACE(comm->name());
    Communicator& host = comm->host();
    EXPECT_NE(&host, comm);
    EXPECT_EQ(host.backend(), "local");  // A world of one: no MPI bootstrap.
    EXPECT_EQ(host.device(), Device::Cpu());
    EXPECT_EQ(host.name(), comm->name());
    EXPECT_EQ(&host.host(), &host);
    // Reductions, gathers and broadcasts of host tensors, of several dtypes.
    ASSERT_OK_AND_ASSIGN(Tensor send, Filled(Device::Cpu(), DType::kF32, Values(DType::kF32, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor recv,
                         Filled(Device::Cpu(), DType::kF32, std::vector<double>(kN, kSentinel)));
    ASSERT_OK(comm->AllReduce(send, recv, ReduceOp::kMax));
    ASSERT_OK_AND_ASSIGN(std::vector<double> got, Read(recv));
    EXPECT_THAT(got, ElementsAreArray(Values(DType::kF32, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor wide, Filled(Device::Cpu(), DType::kF64, Values(DType::kF64, kN)));
    ASSERT_OK_AND_ASSIGN(Tensor gathered,
                         Filled(Device::Cpu(), DType::kF64, std::vector<double>(kN, kSentinel)));
    ASSERT_OK(comm->AllGather(wide, gathered));
    ASSERT_OK_AND_ASSIGN(got, Read(gathered));
    EXPECT_THAT(got, ElementsAreArray(Values(DType::kF64, kN)));
    ASSERT_OK(comm->Broadcast(wide, /*root=*/0));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Work> work,
                         comm->AllReduceAsync(send, send, ReduceOp::kSum));
    ASSERT_OK(work->Wait());
    // Device tensors still go over NCCL.
    ASSERT_OK_AND_ASSIGN(Tensor on_gpu, Filled(kGpu, DType::kF32, Values(DType::kF32, kN)));
    ASSERT_OK(comm->AllReduce(on_gpu, ReduceOp::kSum));
    ASSERT_OK_AND_ASSIGN(got, Read(on_gpu));
    EXPECT_THAT(got, ElementsAreArray(Values(DType::kF32, kN)));
    // One call's tensors on two devices: refused, naming the one out of place.
    absl::Status mixed = comm->AllReduce(send, on_gpu, ReduceOp::kSum);
    EXPECT_TRUE(absl::IsInvalidArgument(mixed)) << mixed;
    EXPECT_THAT(std::string(mixed.message()), HasSubstr("AllReduce recv"));
    mixed = comm->AllReduce(on_gpu, send, ReduceOp::kSum);
    EXPECT_TRUE(absl::IsInvalidArgument(mixed)) << mixed;
    EXPECT_THAT(std::string(mixed.message()), HasSubstr("AllReduce recv"));
  }
}

}  // namespace
}  // namespace usine
