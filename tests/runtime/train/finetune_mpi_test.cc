// The Trainer's continuous fine-tuning at 2 (and 4) ranks on the tiny GPT: in watch mode it
// trains on the shards that land while it runs, each sample once; a stop signal while it
// waits for data ends the run within seconds with a checkpoint at the last step boundary (a
// half-fetched step's micro-batches are not counted), and the resumed run neither repeats
// nor skips a sample; init_from starts from another run's weights at another TP layout;
// models are published only when the validation loss improves, and the numbering and the
// bar survive a resume.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpointer.h"
#include "collectives/local/local_communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stop_signal.h"
#include "runtime/data/token_shard.h"
#include "runtime/nn/gpt.h"
#include "runtime/train/trainer.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

constexpr int64_t kSeq = 16;
constexpr uint64_t kSeed = 1337;

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// `samples` samples of kSeq + 1 tokens ((n - 1) / T of them in n tokens), learnable.
std::vector<int32_t> Samples(int64_t samples, int salt) {
  return testing::LearnableTokens(samples * kSeq + 1, salt);
}

class FinetuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InstallStopSignalHandlers();
    ClearStopSignal();
    ASSERT_OK_AND_ASSIGN(world_, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
    ASSERT_OK_AND_ASSIGN(dir_, testing::MakeSharedTempDir(*world_, "usine_finetune_mpi"));
    if (world_->rank() == 0) {
      std::filesystem::create_directories(dir_ + "/incoming");
      ASSERT_OK(WriteTokenShard(dir_ + "/train_0.bin", Samples(400, 0), TokenWidth::kUint16));
      ASSERT_OK(WriteTokenShard(dir_ + "/val_0.bin", Samples(40, 3), TokenWidth::kUint16));
    }
  }

  void TearDown() override {
    ClearStopSignal();
    if (world_ == nullptr) return;
    ASSERT_OK(testing::RemoveSharedTempDir(*world_, dir_));
  }

  // Lands a shard of `samples` samples in incoming/ (rank 0; WriteTokenShard renames).
  void Land(const std::string& name, int64_t samples) const {
    if (world_->rank() != 0) return;
    ASSERT_OK(
        WriteTokenShard(dir_ + "/incoming/" + name, Samples(samples, 1), TokenWidth::kUint16));
  }

  // A step is two micro-batches of one sequence per rank: two of the stream's global batches.
  TrainerOptions Options(const std::string& run) const {
    TrainerOptions o;
    o.run_dir = dir_ + "/" + run;
    o.train_data.shards = {dir_ + "/train_0.bin"};
    o.train_data.vocab_size = Tiny().vocab_size;
    o.train_data.seq_len = kSeq;
    o.train_data.batch_size = 1;
    o.train_data.seed = 7;
    o.global_batch = 2 * world_->size();
    o.schedule = {.max_lr = 3e-3, .min_lr = 3e-4, .warmup_steps = 2, .total_steps = 10};
    o.seed = kSeed;
    o.metrics.peak_flops = 1e11;
    return o;
  }

  TrainerOptions WatchOptions(const std::string& run) const {
    TrainerOptions o = Options(run);
    o.train_data.shards.clear();  // Incoming data only: no replay.
    o.train_data.watch = usine::WatchOptions{.directory = dir_ + "/incoming",
                                             .poll_interval = absl::Milliseconds(100)};
    return o;  // No budget: until a signal.
  }

  struct Outcome {
    TrainOutcome outcome;
    std::vector<EvalReport> evals;
    absl::Duration signal_to_return;  // From the signal to Run's return.
  };

  // Trains with `o` (a fresh model of `seed`, or the run resumed); `signal_after`: on the
  // last rank, SIGUSR1 one second after that step (0: never).
  absl::StatusOr<Outcome> Train(TrainerOptions o, int tp = 1, int64_t signal_after = 0,
                                uint64_t seed = kSeed) {
    ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(*world_, tp));
    ASSIGN_OR_RETURN(
        auto model,
        Gpt::Create({.config = Tiny(), .seed = seed, .tp = &grid->comm(ParallelAxis::kTensor)}));
    Outcome out;
    std::thread signaller;
    absl::Time signalled = absl::InfiniteFuture();
    const std::function<void(const StepReport&)> chained = o.on_step;
    o.on_step = [&](const StepReport& r) {
      if (chained) chained(r);
      if (r.step == signal_after && world_->rank() == world_->size() - 1) {
        signaller = std::thread([&] {
          absl::SleepFor(absl::Seconds(1));  // The run is waiting for data by then.
          signalled = absl::Now();
          ::kill(::getpid(), SIGUSR1);
        });
      }
    };
    o.on_eval = [&](const EvalReport& e) { out.evals.push_back(e); };
    absl::StatusOr<TrainOutcome> outcome;
    {
      absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*grid, *model, o);
      outcome = trainer.ok() ? (*trainer)->Run() : trainer.status();
    }
    const absl::Time returned = absl::Now();
    if (signaller.joinable()) signaller.join();
    ClearStopSignal();
    RETURN_IF_ERROR(outcome.status());
    out.outcome = *outcome;
    out.signal_to_return = returned - signalled;
    return out;
  }

  // The published files' names, sorted.
  std::vector<std::string> Published(const std::string& dir) const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::unique_ptr<Communicator> world_;
  std::string dir_;
};

TEST_F(FinetuneTest, SignalWhileWaitingForDataResumesWithoutLosingOrRepeatingSamples) {
  const int64_t ranks = world_->size();  // Samples per global batch of the stream.
  // 3 batches now, 2 more landed during step 1: steps 1 and 2, and half of step 3, which
  // waits for data until the signal.
  Land("a.bin", 3 * ranks);
  TrainerOptions o = WatchOptions("watched");
  o.on_step = [&](const StepReport& r) {
    if (r.step == 1) Land("b.bin", 2 * ranks);
  };
  ASSERT_OK_AND_ASSIGN(Outcome first, Train(o, 1, /*signal_after=*/2));
  EXPECT_EQ(first.outcome.reason, StopReason::kSignal);
  EXPECT_EQ(first.outcome.signal, SIGUSR1);
  EXPECT_EQ(first.outcome.exit_code(), kExitRequeue);
  EXPECT_EQ(first.outcome.step, 2);  // Every landed sample once; the half step not taken.
  EXPECT_LT(first.signal_to_return, absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(const int64_t latest, ReadLatestStep(o.run_dir + "/checkpoints"));
  EXPECT_EQ(latest, 2);

  // One more batch lands: with the 5th (read in the half step, so not consumed) it makes
  // step 3, and only step 3.
  Land("c.bin", ranks);
  o.on_step = nullptr;
  ASSERT_OK_AND_ASSIGN(Outcome second, Train(o, 1, /*signal_after=*/3));
  EXPECT_EQ(second.outcome.reason, StopReason::kSignal);
  EXPECT_EQ(second.outcome.step, 3);
  EXPECT_EQ(second.outcome.tokens_seen, 3 * 2 * ranks * kSeq);
  EXPECT_LT(second.signal_to_return, absl::Seconds(5));
}

TEST_F(FinetuneTest, InitFromLoadsTheModelAtAnotherTpLayoutAndPublishesOnlyImprovements) {
  TrainerOptions base = Options("base");
  base.max_steps = 3;
  base.val_shards = {dir_ + "/val_0.bin"};
  base.eval_every = 3;
  ASSERT_OK_AND_ASSIGN(Outcome trained, Train(base));
  ASSERT_EQ(trained.evals.size(), 1u);

  // Another seed, TP 2: the baseline evaluation sees the base run's weights.
  TrainerOptions o = Options("tuned");
  o.init_from = base.run_dir + "/checkpoints";  // Its `latest`.
  o.max_steps = 4;
  o.val_shards = base.val_shards;
  o.eval_every = 1;
  o.publish_dir = dir_ + "/published";
  o.schedule.max_lr = 3e-2;  // Large steps: the loss need not fall at every one.
  ASSERT_OK_AND_ASSIGN(Outcome tuned, Train(o, /*tp=*/2, 0, /*seed=*/99));
  ASSERT_EQ(tuned.evals.size(), 5u);  // The baseline, then steps 1 to 4.
  EXPECT_EQ(tuned.evals[0].step, 0);
  EXPECT_NEAR(tuned.evals[0].loss, trained.evals[0].loss, 1e-4 * trained.evals[0].loss);

  // The run resumed to step 8: no new baseline, the bar and the numbering go on.
  o.max_steps = 8;
  ASSERT_OK_AND_ASSIGN(Outcome resumed, Train(o, /*tp=*/2, 0, /*seed=*/99));
  ASSERT_EQ(resumed.evals.size(), 4u);
  EXPECT_EQ(resumed.evals[0].step, 5);

  std::vector<EvalReport> evals = tuned.evals;
  evals.insert(evals.end(), resumed.evals.begin(), resumed.evals.end());
  std::vector<std::string> expected;
  std::vector<EvalReport> published;
  double best = evals[0].loss;
  for (size_t i = 1; i < evals.size(); ++i) {
    if (evals[i].loss < best) {
      best = evals[i].loss;
      published.push_back(evals[i]);
      expected.push_back(absl::StrFormat("model-v%04d.h5", published.size()));
    }
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(Published(o.publish_dir), expected);

  // The last published file: the model's tensors (loadable at TP 1) and its metadata.
  LocalCommunicator self("self");
  CheckpointerOptions reading;
  reading.directory = dir_ + "/reader";
  ASSERT_OK_AND_ASSIGN(auto reader, Checkpointer::Create(self, reading));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = 5}));
  StateDict state;
  ASSERT_OK(model->AddToStateDict(state, "model/"));
  ASSERT_OK(reader->Load(o.publish_dir + "/" + expected.back(), state));
  EXPECT_EQ(*state.GetInt("version"), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(*state.GetInt("step"), published.back().step);
  EXPECT_EQ(*state.GetDouble("val_loss"), published.back().loss);
  EXPECT_EQ(*state.GetInt("tokens_seen"), published.back().step * 2 * world_->size() * kSeq);
}

TEST_F(FinetuneTest, BudgetIsOptionalOnlyWhenWatching) {
  ASSERT_OK_AND_ASSIGN(auto grid, ProcessGrid::Create(*world_, 1));
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed}));
  absl::Status status = Trainer::Create(*grid, *model, Options("no_budget")).status();
  EXPECT_NE(status.message().find("no budget"), std::string::npos) << status;
  TrainerOptions o = WatchOptions("publish_without_eval");
  o.publish_dir = dir_ + "/published";
  status = Trainer::Create(*grid, *model, o).status();
  EXPECT_NE(status.message().find("publish_dir"), std::string::npos) << status;
  o.publish_dir.clear();
  o.init_from = dir_ + "/no_such_checkpoints";
  status = Trainer::Create(*grid, *model, o).status();
  EXPECT_NE(status.message().find("no_such_checkpoints"), std::string::npos) << status;
}

}  // namespace
}  // namespace usine
