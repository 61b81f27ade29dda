// Training on a CUDA device over NCCL, as `usine train` runs there (World::CommunicatorFor):
// the Trainer over an NCCL world of one gives the losses of a host (local) world bit for bit,
// with its agreements, checkpoints and metrics going over the NCCL communicator's host twin;
// and a step whose gradients go through a GradientReducer over NCCL, fed by the layers' default
// stream, computes the step of a model without one; ZeRO-1 on the device trains as AdamW. (A
// machine with several GPUs would run the reducer's averages for real; one GPU runs the
// wiring.)
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "checkpoint/checkpoint_directory.h"
#include "collectives/local/local_communicator.h"
#include "collectives/nccl/nccl_communicator.h"
#include "collectives/process_grid.h"
#include "runtime/data/token_shard.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/train_step.h"
#include "runtime/train/trainer.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

using testing::ReadTensor;

constexpr Device kGpu = Device::Cuda(0);
constexpr uint64_t kSeed = 1337;

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

class TrainerGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    ASSERT_OK_AND_ASSIGN(dir_, testing::MakeSharedTempDir(host_, "usine_trainer_gpu"));
    ASSERT_OK(WriteTokenShard(dir_ + "/train_0.bin", testing::LearnableTokens(12000, 0),
                              TokenWidth::kUint16));
    ASSERT_OK_AND_ASSIGN(nccl_, NcclCommunicator::Create(nullptr, kGpu, "world"));
  }

  void TearDown() override {
    if (!dir_.empty()) ASSERT_OK(testing::RemoveSharedTempDir(host_, dir_));
  }

  TrainerOptions Options(const std::string& run) const {
    TrainerOptions o;
    o.run_dir = dir_ + "/" + run;
    o.train_data.shards = {dir_ + "/train_0.bin"};
    o.train_data.vocab_size = Tiny().vocab_size;
    o.train_data.seq_len = 16;
    o.train_data.batch_size = 2;
    o.train_data.seed = 7;
    o.train_data.device = kGpu;
    o.global_batch = 4;  // Two micro-batches a step.
    o.schedule = {.max_lr = 3e-3, .min_lr = 3e-4, .warmup_steps = 2, .total_steps = 10};
    o.max_steps = 4;
    o.seed = kSeed;
    o.metrics.peak_flops = 1e11;
    return o;
  }

  absl::StatusOr<std::vector<StepReport>> Train(Communicator& world, const std::string& run,
                                                bool zero = false) {
    ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(world, 1));
    ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = Tiny(),
                                              .seed = kSeed,
                                              .device = kGpu,
                                              .tp = &grid->comm(ParallelAxis::kTensor)}));
    std::vector<StepReport> reports;
    TrainerOptions o = Options(run);
    o.zero = zero;
    o.on_step = [&](const StepReport& r) { reports.push_back(r); };
    ASSIGN_OR_RETURN(auto trainer, Trainer::Create(*grid, *model, std::move(o)));
    RETURN_IF_ERROR(trainer->Run().status());
    return reports;
  }

  LocalCommunicator host_{"world"};
  std::unique_ptr<NcclCommunicator> nccl_;
  std::string dir_;
};

TEST_F(TrainerGpuTest, AnNcclWorldTrainsAsAHostWorldBitForBit) {
  ASSERT_OK_AND_ASSIGN(const std::vector<StepReport> host, Train(host_, "host"));
  ASSERT_OK_AND_ASSIGN(const std::vector<StepReport> nccl, Train(*nccl_, "nccl"));
  ASSERT_EQ(host.size(), 4u);
  ASSERT_EQ(nccl.size(), host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    EXPECT_EQ(nccl[i].loss, host[i].loss) << "step " << host[i].step;
    EXPECT_EQ(nccl[i].grad_norm, host[i].grad_norm) << "step " << host[i].step;
  }
  EXPECT_LT(host.back().loss, host.front().loss);
  // Saved over the twin's split (MPI-IO's communicator where there are several ranks).
  ASSERT_OK_AND_ASSIGN(const int64_t latest, ReadLatestStep(dir_ + "/nccl/checkpoints"));
  EXPECT_EQ(latest, 4);
}

// ZeRO-1 on the GPU: its flat buffers, reduce-scatter, clip and update on the device over
// NCCL. At one rank the shard is every parameter, and the steps are AdamW's bit for bit (the
// same per-tensor norms summed in the same order, the same update kernel).
TEST_F(TrainerGpuTest, ZeroOverNcclTrainsAsAdamWBitForBit) {
  ASSERT_OK_AND_ASSIGN(const std::vector<StepReport> adamw, Train(*nccl_, "adamw"));
  ASSERT_OK_AND_ASSIGN(const std::vector<StepReport> zero, Train(*nccl_, "zero", /*zero=*/true));
  ASSERT_EQ(adamw.size(), 4u);
  ASSERT_EQ(zero.size(), adamw.size());
  for (size_t i = 0; i < adamw.size(); ++i) {
    EXPECT_EQ(zero[i].loss, adamw[i].loss) << "step " << adamw[i].step;
    EXPECT_EQ(zero[i].grad_norm, adamw[i].grad_norm) << "step " << adamw[i].step;
  }
  ASSERT_OK_AND_ASSIGN(const int64_t latest, ReadLatestStep(dir_ + "/zero/checkpoints"));
  EXPECT_EQ(latest, 4);
}

TEST_F(TrainerGpuTest, AStepThroughAReducerOverNcclIsTheStepWithoutOne) {
  ASSERT_OK_AND_ASSIGN(auto plain, Gpt::Create({.config = Tiny(), .seed = kSeed, .device = kGpu}));
  ASSERT_OK_AND_ASSIGN(auto reduced,
                       Gpt::Create({.config = Tiny(), .seed = kSeed, .device = kGpu}));
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       AttachGradientReducer(*reduced, *nccl_, {.bucket_bytes = 1 << 14}));
  ASSERT_GT(reducer->num_buckets(), 2);  // ~175 KB of gradients: about ten buckets.
  ASSERT_OK_AND_ASSIGN(auto plain_adamw, AdamW::Create(plain->Parameters()));
  ASSERT_OK_AND_ASSIGN(auto reduced_adamw, AdamW::Create(reduced->Parameters()));
  std::vector<int32_t> ids(2 * 17);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % 500);
  ASSERT_OK_AND_ASSIGN(const Tensor tokens, testing::MakeTensor(Device::Cpu(), {2, 17}, ids));
  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE(step);
    ASSERT_OK_AND_ASSIGN(const TrainStepResult want,
                         TrainStep(*plain, {tokens, tokens}, *plain_adamw, {.lr = 1e-3}));
    ASSERT_OK_AND_ASSIGN(const TrainStepResult got,
                         TrainStep(*reduced, {tokens, tokens}, *reduced_adamw,
                                   {.lr = 1e-3, .reducer = reducer.get(), .dp = nccl_.get()}));
    EXPECT_EQ(got.loss, want.loss);
    EXPECT_EQ(got.grad_norm, want.grad_norm);
  }
  const std::vector<NamedParameter> a = plain->Parameters(), b = reduced->Parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(const std::vector<float> want, ReadTensor<float>(a[i].parameter->value));
    ASSERT_OK_AND_ASSIGN(const std::vector<float> got, ReadTensor<float>(b[i].parameter->value));
    EXPECT_EQ(got, want) << a[i].name;
  }
}

}  // namespace
}  // namespace usine
