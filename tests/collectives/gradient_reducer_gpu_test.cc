// GradientReducer on CUDA over the NCCL backend, in a world of one on cuda:0 (NCCL runs one
// rank per GPU). The average over one rank is the rank's own gradients, so these tests check
// the CUDA path's bookkeeping and stream ordering as far as one GPU can show them: gradients
// written by kernels on the caller's compute stream come out of Finish unchanged and readable
// on that stream, micro-steps accumulate, buckets start before the last gradient is ready.
// Reductions between GPUs need a machine with several (the mpi tests cover the CPU path).
// The suite skips itself without a GPU.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/gradient_reducer.h"
#include "collectives/nccl/nccl_communicator.h"
#include "runtime/core/device.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAreArray;
using testing::MakeTensor;
using testing::ReadTensor;

constexpr Device kGpu = Device::Cuda(0);

std::vector<GradientSpec> Specs() {
  return {{"wte", {64, 16}, DType::kF32},  {"ln.w", {16}, DType::kF32},
          {"ln.b", {16}, DType::kF32},     {"fc", {16, 48}, DType::kF32},
          {"proj", {48, 16}, DType::kF32}, {"head.b", {7}, DType::kF32}};
}

// Gradient `g`'s values in micro-step `micro`: small integers, exact in f32 sums.
std::vector<float> Values(int g, int micro, int64_t n) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 5 + g * 11 + micro * 3) % 23) - 11;
  return v;
}

class GradientReducerGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    ASSERT_OK_AND_ASSIGN(comm_, NcclCommunicator::Create(nullptr, kGpu, "dp"));
    ASSERT_OK_AND_ASSIGN(compute_, Stream::Create(kGpu));
  }

  // Adds micro-step `micro`'s values into gradient `g` with a kernel on the compute stream,
  // behind `work` milliseconds' worth of other kernels, as backward would.
  void Accumulate(GradientReducer& reducer, int g, int micro) {
    const Tensor& grad = reducer.gradient(g);
    ASSERT_OK_AND_ASSIGN(Tensor values,
                         MakeTensor(kGpu, grad.shape(), Values(g, micro, grad.numel())));
    ASSERT_OK(Add(grad, values, grad, *compute_));
    inputs_.push_back(std::move(values));  // Alive until the compute stream has read it.
    // Keep the compute stream busy after the write, so that an unordered reduction or read
    // would overtake the kernels before it.
    ASSERT_OK(Scale(busy_, 1.0f, *compute_));
  }

  std::unique_ptr<NcclCommunicator> comm_;
  std::optional<Stream> compute_;
  Tensor busy_;
  std::vector<Tensor> inputs_;
};

TEST_F(GradientReducerGpuTest, MicroStepsAccumulateAndBucketsStartBeforeTheLastGradient) {
  ASSERT_OK_AND_ASSIGN(busy_, Tensor::Empty({int64_t{64} << 20}, DType::kF32, kGpu));
  ASSERT_OK(Fill(busy_, 1.0));
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       GradientReducer::Create(*comm_, Specs(), {.bucket_bytes = 2048}));
  ASSERT_EQ(reducer->num_buckets(), 5);
  ASSERT_OK(reducer->ZeroGradients(*compute_));
  constexpr int kMicroSteps = 3;
  for (int micro = 0; micro < kMicroSteps; ++micro) {
    const bool last = micro == kMicroSteps - 1;
    ASSERT_OK(reducer->BeginStep(/*reduce=*/last, *compute_));
    for (int g = reducer->num_gradients() - 1; g >= 0; --g) {  // Backward's order.
      Accumulate(*reducer, g, micro);
      ASSERT_OK(reducer->MarkReady(g));
      if (last && g == 4) {
        // head.b (bucket 0) and proj (bucket 1) are complete: both started, while the
        // gradients of four parameters are still to come.
        EXPECT_EQ(reducer->launched_buckets(), 2);
      }
    }
    EXPECT_EQ(reducer->launched_buckets(), last ? 5 : 0);
    ASSERT_OK(reducer->Finish());
  }
  // Read on the compute stream, which Finish ordered after the reductions.
  for (int g = 0; g < reducer->num_gradients(); ++g) {
    const Tensor& grad = reducer->gradient(g);
    ASSERT_OK_AND_ASSIGN(Tensor host, Tensor::Empty(grad.shape(), DType::kF32));
    ASSERT_OK(Copy(grad, host, *compute_));
    ASSERT_OK(compute_->Synchronize());
    std::vector<float> want(grad.numel(), 0.0f);
    for (int micro = 0; micro < kMicroSteps; ++micro) {
      const std::vector<float> v = Values(g, micro, grad.numel());
      for (size_t i = 0; i < want.size(); ++i) want[i] += v[i];
    }
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(host));
    EXPECT_THAT(got, ElementsAreArray(want)) << "gradient " << g;
  }
  // The next accumulation cycle starts from zero, also when zeroed on the compute stream.
  ASSERT_OK(reducer->ZeroGradients(*compute_));
  ASSERT_OK(reducer->BeginStep(/*reduce=*/true, *compute_));
  for (int g = reducer->num_gradients() - 1; g >= 0; --g) {
    Accumulate(*reducer, g, /*micro=*/7);
    ASSERT_OK(reducer->MarkReady(g));
  }
  ASSERT_OK(reducer->Finish());
  ASSERT_OK(compute_->Synchronize());
  for (int g = 0; g < reducer->num_gradients(); ++g) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(reducer->gradient(g)));
    EXPECT_THAT(got, ElementsAreArray(Values(g, 7, reducer->gradient(g).numel())))
        << "gradient " << g;
  }
}

TEST_F(GradientReducerGpuTest, BucketsAreOnTheCommunicatorsDeviceAndMisuseIsAnError) {
  ASSERT_OK_AND_ASSIGN(auto reducer, GradientReducer::Create(*comm_, Specs()));
  EXPECT_EQ(reducer->num_buckets(), 1);
  EXPECT_EQ(reducer->gradient(0).device(), kGpu);
  ASSERT_OK(reducer->BeginStep(/*reduce=*/true, *compute_));
  ASSERT_OK(reducer->MarkReady(5));
  EXPECT_FALSE(reducer->MarkReady(5).ok());  // twice in one step
  const absl::Status finish = reducer->Finish();
  EXPECT_FALSE(finish.ok());
  EXPECT_THAT(std::string(finish.message()), ::testing::HasSubstr("wte"));
}

}  // namespace
}  // namespace usine
