// What a CUDA training step asks of the host, counted by the CUDA emulator (cuda_emulator.h's
// Statistics), not timed: a step in its steady state allocates no device memory, and the host
// waits for the device only where it reads a value back. A wait anywhere else (an operation
// dispatched on the host stream, a copy into pageable memory, a cudaFree) drains the GPU's
// queue, so that the host's launches, which otherwise run ahead of the device, add to the
// step's time. Nor does any copy come from pageable memory, which a driver may make wait: token
// ids and targets go through Upload's page-locked staging (runtime/kernels/upload.h).
// Emulated only: a real GPU does not count its calls. (Nor does the emulator count the host's
// polling of NCCL's events, complete here once recorded: a data-parallel step also waits for
// its reductions, GradientReducer::Finish and ZeroAdamW's reduce-scatter.)
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

#include "collectives/nccl/nccl_communicator.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/zero_adamw.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/train_step.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::cuda_emulator::Statistics;
using testing::cuda_emulator::StatisticsOf;

constexpr Device kGpu = Device::Cuda(0);

// Two layers, two heads of 16 (the bf16 flash kernel's smallest head), a vocabulary of 500.
GptConfig Small() { return GptConfig{"census", 500, 64, 2, 2, 32}; }

Tensor Tokens() {
  std::vector<int32_t> ids(2 * 17);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % 500);
  return testing::MakeTensor(Device::Cpu(), {2, 17}, ids).value();
}

class TrainStepCensusGpuTest
    : public ::testing::TestWithParam<std::pair<MatmulPrecision, AttentionKernel>> {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  }
};

// Each phase of a step, as `usine bench train` times them: the step's first run allocates its
// device memory; the next two allocate none, and wait for the device only to read the loss
// (the copy into pageable memory and the stream's synchronisation after it) and the gradients'
// norms for the clip (likewise). The forward pass uploads the token ids for the embedding and
// the targets for the loss, the backward pass the embedding gradient's grouping of the ids.
TEST_P(TrainStepCensusGpuTest, PhasesWaitOnlyToReadTheLossAndTheNorms) {
  testing::ScopedMatmulPrecision precision(GetParam().first);
  ASSERT_OK_AND_ASSIGN(
      auto model,
      Gpt::Create({.config = Small(), .seed = 3, .device = kGpu, .attention = GetParam().second}));
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
  const Tensor tokens = Tokens();
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const Statistics zero_grad = StatisticsOf([&] { ASSERT_OK(model->ZeroGrad()); });
    const Statistics forward = StatisticsOf([&] { ASSERT_OK(model->Forward(tokens).status()); });
    const Statistics backward = StatisticsOf([&] { ASSERT_OK(model->Backward()); });
    double norm = 0;
    const Statistics clip = StatisticsOf(
        [&] { ASSERT_OK_AND_ASSIGN(norm, ClipGradientNorm(model->Parameters(), /*max_norm=*/0)); });
    const Statistics update =
        StatisticsOf([&] { ASSERT_OK(adamw->Step(1e-3, ClipFactor(norm, 1.0))); });
    EXPECT_EQ(zero_grad.host_waits, 0);
    EXPECT_EQ(forward.host_waits, 2);
    EXPECT_EQ(backward.host_waits, 0);
    EXPECT_EQ(clip.host_waits, 2);
    EXPECT_EQ(update.host_waits, 0);
    for (const Statistics& phase : {zero_grad, forward, backward, clip, update}) {
      EXPECT_EQ(phase.pageable_uploads, 0);
    }
    EXPECT_GT(forward.launches, 0);
    EXPECT_GT(backward.launches, forward.launches);
    if (step == 0) continue;
    for (const Statistics& phase : {zero_grad, forward, backward, clip, update}) {
      EXPECT_EQ(phase.device_allocations, 0);
      EXPECT_EQ(phase.device_frees, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, TrainStepCensusGpuTest,
    ::testing::Values(std::pair{MatmulPrecision::kF32, AttentionKernel::kUnfused},
                      std::pair{MatmulPrecision::kBf16, AttentionKernel::kFlash}),
    [](const auto& info) {
      return std::string(MatmulPrecisionName(info.param.first)) +
             (info.param.second == AttentionKernel::kFlash ? "Flash" : "Unfused");
    });

class DataParallelStepCensusGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    ASSERT_OK_AND_ASSIGN(nccl_, NcclCommunicator::Create(nullptr, kGpu, "world"));
  }

  // Each micro-batch's loss, then the gradients' norms: a copy into pageable memory and the
  // stream's synchronisation after it, each.
  static constexpr int64_t kWaitsForTwoMicroBatches = 2 * 2 + 2;

  std::unique_ptr<NcclCommunicator> nccl_;
};

// A data-parallel step over NCCL (a world of one: the calls, events and streams of any size),
// with two micro-batches: the gradients reduce in buckets while backward runs, and the host
// waits for the device only to read the losses and the norms (and, uncounted, for the
// reductions).
TEST_F(DataParallelStepCensusGpuTest, AReducedStepAllocatesNothingAndWaitsOnlyToRead) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 3, .device = kGpu}));
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       AttachGradientReducer(*model, *nccl_, {.bucket_bytes = 1 << 14}));
  ASSERT_GT(reducer->num_buckets(), 2);
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
  const Tensor tokens = Tokens();
  std::vector<Statistics> steps;
  for (int step = 0; step < 3; ++step) {
    steps.push_back(StatisticsOf([&] {
      ASSERT_OK(TrainStep(*model, {tokens, tokens}, *adamw,
                          {.lr = 1e-3, .reducer = reducer.get(), .dp = nccl_.get()})
                    .status());
    }));
  }
  for (int step = 1; step < 3; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    EXPECT_EQ(steps[step].device_allocations, 0);
    EXPECT_EQ(steps[step].device_frees, 0);
    EXPECT_EQ(steps[step].host_waits, kWaitsForTwoMicroBatches);
    EXPECT_EQ(steps[step].pageable_uploads, 0);
  }
}

// ZeRO-1 over NCCL: the reduce-scatter, the shard's update and the all-gather allocate nothing
// in the steady state, and the host waits as in the reduced step (the norms are the shard's).
TEST_F(DataParallelStepCensusGpuTest, AZeroStepAllocatesNothing) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Small(), .seed = 3, .device = kGpu}));
  ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*nccl_, model->Parameters()));
  const Tensor tokens = Tokens();
  std::vector<Statistics> steps;
  for (int step = 0; step < 3; ++step) {
    steps.push_back(StatisticsOf([&] {
      ASSERT_OK(
          TrainStep(*model, {tokens, tokens}, *zero, {.lr = 1e-3, .dp = nccl_.get()}).status());
    }));
  }
  for (int step = 1; step < 3; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    EXPECT_EQ(steps[step].device_allocations, 0);
    EXPECT_EQ(steps[step].device_frees, 0);
    EXPECT_EQ(steps[step].host_waits, kWaitsForTwoMicroBatches);
    EXPECT_EQ(steps[step].pageable_uploads, 0);
  }
}

}  // namespace
}  // namespace usine
