// The Trainer at 2 (and 4) ranks on the tiny GPT and synthetic token shards: a run stopped
// and resumed repeats the losses of a run that never stopped, bit for bit (data parallel with
// gradient accumulation, and ZeRO-1); gradient accumulation computes the same step as one
// big batch; a non-finite loss on one rank skips the step on every rank and leaves the
// weights alone, and too many in a row end the run; a stop signal on one rank makes every
// rank checkpoint and return the requeue code; evaluation reports the validation loss; a
// directory or a shard that fails on one rank fails Trainer::Create on every rank. The resumed
// runs are repeated on CUDA (TrainerResumeTest's `Cuda` cases: NCCL, a GPU per rank; the
// emulated twins where there are not several, label emu); the rest run on the cpu.
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpoint_directory.h"
#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stop_signal.h"
#include "runtime/data/token_shard.h"
#include "runtime/nn/gpt.h"
#include "runtime/train/trainer.h"
#include "tests/testing/communicator_on_device.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

using testing::ReadTensor;

constexpr int64_t kSeq = 16;
constexpr uint64_t kSeed = 1337;

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// The world (on the suite's device), token shards in a temporary directory, and runs.
class TrainerFixture : public testing::MultiRankDeviceTest {
 protected:
  void SetUp() override {
    testing::MultiRankDeviceTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    InstallStopSignalHandlers();
    ClearStopSignal();
    ASSERT_OK_AND_ASSIGN(dir_, testing::MakeSharedTempDir(*world_, "usine_trainer_mpi"));
    if (world_->rank() == 0) {
      ASSERT_OK(WriteTokenShard(dir_ + "/train_0.bin", testing::LearnableTokens(12000, 0),
                                TokenWidth::kUint16));
      ASSERT_OK(WriteTokenShard(dir_ + "/train_1.bin", testing::LearnableTokens(9000, 1),
                                TokenWidth::kUint16));
      ASSERT_OK(WriteTokenShard(dir_ + "/val_0.bin", testing::LearnableTokens(3000, 3),
                                TokenWidth::kUint16));
    }
  }

  void TearDown() override {
    ClearStopSignal();
    if (world_ == nullptr || dir_.empty()) return;
    ASSERT_OK(testing::RemoveSharedTempDir(*world_, dir_));
  }

  TrainerOptions Options(const std::string& run, int64_t max_steps) const {
    TrainerOptions o;
    o.run_dir = dir_ + "/" + run;
    o.train_data.shards = {dir_ + "/train_0.bin", dir_ + "/train_1.bin"};
    o.train_data.vocab_size = Tiny().vocab_size;
    o.train_data.seq_len = kSeq;
    o.train_data.batch_size = 2;  // Micro-batch per rank.
    o.train_data.seed = 7;
    o.global_batch = 4 * world_->size();  // Two micro-batches per rank and step.
    o.schedule = {.max_lr = 3e-3, .min_lr = 3e-4, .warmup_steps = 2, .total_steps = 10};
    o.max_steps = max_steps;
    o.seed = kSeed;
    o.metrics.peak_flops = 1e11;  // No sgemm measurement at every start.
    return o;
  }

  // Trains a fresh model (or resumes the run) for `o`, returning the steps' reports.
  absl::StatusOr<std::vector<StepReport>> Train(TrainerOptions o, int tp = 1,
                                                TrainOutcome* outcome = nullptr) {
    ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(*world_, tp));
    ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = Tiny(),
                                              .seed = kSeed,
                                              .device = world_->device(),
                                              .tp = &grid->comm(ParallelAxis::kTensor)}));
    std::vector<StepReport> reports;
    o.on_step = [&](const StepReport& r) { reports.push_back(r); };
    ASSIGN_OR_RETURN(auto trainer, Trainer::Create(*grid, *model, std::move(o)));
    ASSIGN_OR_RETURN(TrainOutcome out, trainer->Run());
    if (outcome != nullptr) *outcome = out;
    return reports;
  }

  // Expects the last steps of `straight` to be, bit for bit, those of `resumed`.
  static void ExpectSameSteps(const std::vector<StepReport>& straight,
                              const std::vector<StepReport>& resumed) {
    ASSERT_GE(straight.size(), resumed.size());
    const size_t skip = straight.size() - resumed.size();
    for (size_t i = 0; i < resumed.size(); ++i) {
      EXPECT_EQ(resumed[i].step, straight[skip + i].step);
      EXPECT_EQ(resumed[i].loss, straight[skip + i].loss) << "step " << resumed[i].step;
      EXPECT_EQ(resumed[i].grad_norm, straight[skip + i].grad_norm) << "step " << resumed[i].step;
      EXPECT_EQ(resumed[i].tokens_seen, straight[skip + i].tokens_seen);
    }
  }

  void ExpectResumeRepeatsLosses(bool zero, int tp = 1) {
    TrainerOptions o = Options("straight", 8);
    o.zero = zero;
    ASSERT_OK_AND_ASSIGN(std::vector<StepReport> straight, Train(o, tp));
    ASSERT_EQ(straight.size(), 8u);
    EXPECT_LT(straight.back().loss, straight.front().loss - 0.5);  // It learned something.

    o = Options("stopped", 4);
    o.zero = zero;
    ASSERT_OK_AND_ASSIGN(std::vector<StepReport> first, Train(o, tp));
    ASSERT_EQ(first.size(), 4u);
    ExpectSameSteps({straight.begin(), straight.begin() + 4}, first);
    ASSERT_OK_AND_ASSIGN(int64_t latest, ReadLatestStep(o.run_dir + "/checkpoints"));
    EXPECT_EQ(latest, 4);

    o.max_steps = 8;  // The same run directory: resumes from step 4.
    ASSERT_OK_AND_ASSIGN(std::vector<StepReport> rest, Train(o, tp));
    ASSERT_EQ(rest.size(), 4u);
    ExpectSameSteps(straight, rest);
  }

  std::string dir_;
};

class TrainerResumeTest : public TrainerFixture {};
USINE_INSTANTIATE_DEVICE_TESTS(TrainerResumeTest);

class TrainerTest : public TrainerFixture {};
INSTANTIATE_TEST_SUITE_P(Cpu, TrainerTest, ::testing::Values(Device::Cpu()));

TEST_P(TrainerResumeTest, RepeatsLossesBitForBit) { ExpectResumeRepeatsLosses(false); }

TEST_P(TrainerResumeTest, RepeatsLossesBitForBitWithZero) { ExpectResumeRepeatsLosses(true); }

// Tensor-parallel checkpoints (each rank its boxes of every tensor), with either optimizer.
TEST_P(TrainerResumeTest, RepeatsLossesBitForBitAtTp2) {
  ExpectResumeRepeatsLosses(false, /*tp=*/2);
}

TEST_P(TrainerResumeTest, RepeatsLossesBitForBitWithZeroAtTp2) {
  ExpectResumeRepeatsLosses(true, /*tp=*/2);
}

TEST_P(TrainerTest, AccumulationEqualsOneLargeBatch) {
  TrainerOptions accumulated = Options("accumulated", 3);
  ASSERT_OK_AND_ASSIGN(std::vector<StepReport> a, Train(accumulated));
  TrainerOptions whole = Options("whole", 3);
  whole.train_data.batch_size = 4;  // One micro-batch of the same 4 rows per rank.
  ASSERT_OK_AND_ASSIGN(std::vector<StepReport> b, Train(whole));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i].loss, b[i].loss, 1e-5 * b[i].loss) << "step " << a[i].step;
    EXPECT_NEAR(a[i].grad_norm, b[i].grad_norm, 1e-4 * b[i].grad_norm) << "step " << a[i].step;
  }
}

// A Gpt whose loss this rank reports as NaN at the forwards that `poison` picks. Its
// Backward reports no finished child, so the Trainer's reducer must mark every gradient
// itself.
class PoisonedGpt : public TokenModel {
 public:
  PoisonedGpt(std::unique_ptr<Gpt> gpt, std::function<bool(int64_t forward)> poison)
      : gpt_(std::move(gpt)), poison_(std::move(poison)) {
    AddChild("gpt", gpt_.get());
  }
  absl::StatusOr<double> Forward(const Tensor& tokens) override {
    ASSIGN_OR_RETURN(double loss, gpt_->Forward(tokens));
    return poison_(forwards_++) ? std::nan("") : loss;
  }
  absl::Status Backward(double dloss, const GradientsFinal&) override {
    return gpt_->Backward(dloss);
  }

 private:
  std::unique_ptr<Gpt> gpt_;
  std::function<bool(int64_t)> poison_;
  int64_t forwards_ = 0;
};

TEST_P(TrainerTest, NonFiniteLossOnOneRankSkipsTheStepEverywhere) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto gpt, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  const bool last_rank = world_->rank() == world_->size() - 1;
  // Step 3 (from 1) is poisoned on the last rank only: its forwards 4 and 5. From step 6 on,
  // every step is.
  PoisonedGpt model(std::move(gpt), [&](int64_t f) { return last_rank && (f == 5 || f >= 10); });
  TrainerOptions o = Options("poisoned", 20);
  o.max_bad_steps = 3;
  std::vector<StepReport> reports;
  std::vector<std::vector<float>> wte_after;  // The first weights after each step.
  const Parameter& wte = *model.Parameters()[0].parameter;
  o.on_step = [&](const StepReport& r) {
    reports.push_back(r);
    wte_after.push_back(ReadTensor<float>(wte.value).value());
  };
  ASSERT_OK_AND_ASSIGN(auto trainer, Trainer::Create(*grid, model, std::move(o)));
  const absl::StatusOr<TrainOutcome> outcome = trainer->Run();
  ASSERT_EQ(outcome.status().code(), absl::StatusCode::kAborted) << outcome.status();
  EXPECT_NE(outcome.status().message().find("3 steps in a row"), std::string::npos)
      << outcome.status();
  ASSERT_EQ(reports.size(), 8u);  // Steps 6, 7 and 8 were bad in a row.
  for (const StepReport& r : reports) {
    const bool bad = r.step == 3 || r.step >= 6;
    EXPECT_EQ(r.skipped, bad) << "step " << r.step;
    EXPECT_EQ(std::isfinite(r.loss), !bad) << "step " << r.step;
  }
  EXPECT_EQ(reports.back().skipped_total, 4);
  EXPECT_EQ(wte_after[2], wte_after[1]);  // Step 3 changed nothing.
  EXPECT_NE(wte_after[3], wte_after[2]);  // Step 4 trained again.
  EXPECT_EQ(wte_after[7], wte_after[4]);
}

TEST_P(TrainerTest, StopSignalOnOneRankCheckpointsAndAsksForRequeue) {
  TrainerOptions o = Options("signalled", 50);
  const bool last_rank = world_->rank() == world_->size() - 1;
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  o.on_step = [&](const StepReport& r) {
    if (r.step == 3 && last_rank) std::raise(SIGUSR1);
  };
  const std::string checkpoints = o.run_dir + "/checkpoints";
  ASSERT_OK_AND_ASSIGN(auto trainer, Trainer::Create(*grid, *model, std::move(o)));
  ASSERT_OK_AND_ASSIGN(const TrainOutcome outcome, trainer->Run());
  EXPECT_EQ(outcome.reason, StopReason::kSignal);
  EXPECT_EQ(outcome.signal, SIGUSR1);
  EXPECT_EQ(outcome.step, 3);
  EXPECT_EQ(outcome.exit_code(), kExitRequeue);
  ASSERT_OK_AND_ASSIGN(const int64_t latest, ReadLatestStep(checkpoints));
  EXPECT_EQ(latest, 3);
}

TEST_P(TrainerTest, EvaluatesTheValidationSplit) {
  TrainerOptions o = Options("evaluated", 4);
  o.val_shards = {dir_ + "/val_0.bin"};
  o.eval_every = 2;
  o.eval_batches = 3;
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  std::vector<EvalReport> evals;
  o.on_eval = [&](const EvalReport& e) { evals.push_back(e); };
  ASSERT_OK_AND_ASSIGN(auto trainer, Trainer::Create(*grid, *model, std::move(o)));
  ASSERT_OK(trainer->Run().status());
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_EQ(evals[0].step, 2);
  EXPECT_EQ(evals[1].step, 4);
  EXPECT_EQ(evals[0].batches, 3);
  EXPECT_LT(evals[1].loss, evals[0].loss);  // Same batches, a better model.
  EXPECT_LT(evals[0].loss, std::log(Tiny().vocab_size));
}

TEST_P(TrainerTest, BadOptionsNameTheOption) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  TrainerOptions o = Options("bad", 4);
  o.global_batch = 3;
  absl::Status status = Trainer::Create(*grid, *model, o).status();
  EXPECT_NE(status.message().find("global batch 3"), std::string::npos) << status;
  o = Options("bad", 0);
  status = Trainer::Create(*grid, *model, o).status();
  EXPECT_NE(status.message().find("no budget"), std::string::npos) << status;
}

// What `call` returns, or a failure and the end of the job if it takes over 60 s: the other
// ranks of a failed one would wait in the next collective for 600 s.
absl::Status Within60s(const char* what, const std::function<absl::Status()>& call) {
  auto done = std::async(std::launch::async, call);
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << what << " still blocked after 60 s";
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return done.get();
}

absl::Status CreateWithin60s(ProcessGrid& grid, Gpt& model, const TrainerOptions& o) {
  return Within60s("Trainer::Create", [&] { return Trainer::Create(grid, model, o).status(); });
}

TEST_P(TrainerTest, ALocalFailureOnOneRankFailsCreateOnEveryRank) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  // Rank 0 alone creates the publish directory: here it would lie under a regular file.
  if (world_->rank() == 0) std::ofstream(dir_ + "/blocker") << "a file";
  ASSERT_OK(world_->Barrier());
  TrainerOptions o = Options("publishing", 4);
  o.val_shards = {dir_ + "/val_0.bin"};
  o.eval_every = 2;
  o.publish_dir = dir_ + "/blocker/published";
  absl::Status status = CreateWithin60s(*grid, *model, o);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("cannot create publish directory"))
      << status;
  if (world_->rank() != 0) {
    EXPECT_THAT(std::string(status.message()), ::testing::StartsWith("world rank 0: "));
  }

  // The last rank alone cannot read a training shard.
  const int last = world_->size() - 1;
  o = Options("unreadable", 4);
  if (world_->rank() == last) o.train_data.shards.push_back(dir_ + "/gone.bin");
  status = CreateWithin60s(*grid, *model, o);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("gone.bin")) << status;
  if (world_->rank() != last) {
    EXPECT_THAT(std::string(status.message()),
                ::testing::StartsWith(absl::StrCat("world rank ", last, ": ")));
  }
}

// Rank 0's metrics log fails to take a line after step 2 (a file-size limit standing in for a
// full disk): every rank ends the run at the next step boundary with that error, instead of the
// others waiting in step 3's collectives until their timeout.
TEST_P(TrainerTest, AMetricsLogThatFailsOnRankZeroEndsTheRunOnEveryRank) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  TrainerOptions o = Options("log_fails", 6);
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
  const std::string log = o.run_dir + "/metrics.jsonl";
  std::vector<int64_t> steps;
  o.on_step = [&](const StepReport& r) {
    steps.push_back(r.step);
    if (world_->rank() != 0 || r.step != 2) return;
    std::signal(SIGXFSZ, SIG_IGN);  // write(2) fails with EFBIG instead
    const rlimit at_size{static_cast<rlim_t>(std::filesystem::file_size(log)), before.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &at_size), 0);
  };
  const absl::Status status = Within60s("Run", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto trainer, Trainer::Create(*grid, *model, o));
    return trainer->Run().status();
  });
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &before), 0);
  std::signal(SIGXFSZ, SIG_DFL);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("metrics.jsonl: cannot append"))
      << status;
  if (world_->rank() != 0) {
    EXPECT_THAT(std::string(status.message()), ::testing::StartsWith("world rank 0: "));
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2}));  // Step 3 was not taken.
}

}  // namespace
}  // namespace usine
