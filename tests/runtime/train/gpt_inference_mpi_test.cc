// Inference from a Trainer's checkpoint at 2 (and 4) ranks: the tiny GPT trained at TP 2 x DP
// (world / 2) loads at TP 1 and at TP 2 with the writer's logits (bit for bit at its own
// layout); Sample gives the same tokens on every rank and at both layouts, and a GptDecoder at
// TP 2 the logits of TP 1; Evaluate over the world's DP ranks gives the loss of one rank
// evaluating the same sequences alone, and an error on one rank ends it on every rank.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "collectives/byte_exchange.h"
#include "collectives/mpi/mpi_communicator.h"
#include "collectives/process_grid.h"
#include "runtime/data/token_shard.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/gpt_decoder.h"
#include "runtime/nn/sampler.h"
#include "runtime/train/evaluate.h"
#include "runtime/train/gpt_checkpoint.h"
#include "runtime/train/trainer.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

using testing::ReadTensor;

constexpr int64_t kSeq = 16;
constexpr int64_t kSteps = 3;
constexpr char kRunConfig[] = "[model]\nname = \"tiny\"\n";

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// The logits of a fixed [2, 10] input (a collective over the model's TP group).
std::vector<float> FixedLogits(Gpt& model) {
  Tensor inputs = Tensor::Empty({2, 10}, DType::kI32).value();
  for (int i = 0; i < 20; ++i) static_cast<int32_t*>(inputs.raw_data())[i] = (i * 37 + 11) % 500;
  return ReadTensor<float>(model.Logits(inputs).value()).value();
}

class GptInferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(world_, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
    ASSERT_OK_AND_ASSIGN(dir_, testing::MakeSharedTempDir(*world_, "usine_gpt_inference"));
    if (world_->rank() == 0) {
      ASSERT_OK(WriteTokenShard(dir_ + "/train.bin", testing::LearnableTokens(12000, 0),
                                TokenWidth::kUint16));
      ASSERT_OK(WriteTokenShard(dir_ + "/val.bin", testing::LearnableTokens(3000, 3),
                                TokenWidth::kUint16));
    }
    ASSERT_OK_AND_ASSIGN(grid_, ProcessGrid::Create(*world_, 2));
    ASSERT_OK_AND_ASSIGN(
        writer_,
        Gpt::Create({.config = Tiny(), .seed = 1337, .tp = &grid_->comm(ParallelAxis::kTensor)}));
    TrainerOptions o;
    o.run_dir = dir_ + "/run";
    o.train_data = Data("train.bin");
    o.train_data.seed = 7;
    o.global_batch = 2 * grid_->size(ParallelAxis::kData);
    o.schedule = {.max_lr = 3e-3, .min_lr = 3e-4, .warmup_steps = 1, .total_steps = kSteps};
    o.max_steps = kSteps;
    o.config_text = kRunConfig;
    o.model_config_json = GptConfigToJson(Tiny());
    o.metrics.log_every = 0;
    o.metrics.peak_flops = 1e11;  // No sgemm measurement.
    ASSERT_OK_AND_ASSIGN(auto trainer, Trainer::Create(*grid_, *writer_, std::move(o)));
    ASSERT_OK_AND_ASSIGN(TrainOutcome outcome, trainer->Run());
    ASSERT_EQ(outcome.step, kSteps);
  }  // The trainer (and its Checkpointer) is gone before the loads.

  void TearDown() override { ASSERT_OK(testing::RemoveSharedTempDir(*world_, dir_)); }

  DataStreamOptions Data(const std::string& shard) const {
    DataStreamOptions data;
    data.shards = {dir_ + "/" + shard};
    data.vocab_size = Tiny().vocab_size;
    data.seq_len = kSeq;
    data.batch_size = 2;
    return data;
  }

  // Loads the run's latest checkpoint with `tp` as the model's group (null: TP 1).
  std::unique_ptr<Gpt> Load(Communicator* tp) {
    absl::StatusOr<GptCheckpoint> loaded = LoadGptCheckpoint(*world_, dir_ + "/run", {.tp = tp});
    EXPECT_OK(loaded.status());
    if (!loaded.ok()) return nullptr;
    EXPECT_EQ(loaded->step, kSteps);
    EXPECT_EQ(loaded->run_config, kRunConfig);
    return std::move(loaded->model);
  }

  std::unique_ptr<MpiCommunicator> world_;
  std::string dir_;
  std::unique_ptr<ProcessGrid> grid_;
  std::unique_ptr<Gpt> writer_;
};

TEST_F(GptInferenceTest, LoadsAtTp1AndTp2WithTheWritersLogits) {
  const std::vector<float> want = FixedLogits(*writer_);
  std::unique_ptr<Gpt> tp2 = Load(&grid_->comm(ParallelAxis::kTensor));
  ASSERT_NE(tp2, nullptr);
  ASSERT_NE(tp2->tp(), nullptr);
  EXPECT_EQ(FixedLogits(*tp2), want);  // The same layout: the same sums, bit for bit.
  std::unique_ptr<Gpt> tp1 = Load(nullptr);
  ASSERT_NE(tp1, nullptr);
  EXPECT_EQ(tp1->tp(), nullptr);
  const std::vector<float> alone = FixedLogits(*tp1);
  ASSERT_EQ(alone.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(alone[i], want[i], 1e-5 * std::max(1.0f, std::abs(want[i]))) << "logit " << i;
  }
  // Trained: not the initial weights (nor the loader's seed-0 ones).
  ASSERT_OK_AND_ASSIGN(auto fresh, Gpt::Create({.config = Tiny(), .seed = 1337}));
  EXPECT_NE(FixedLogits(*fresh), alone);
}

TEST_F(GptInferenceTest, SampleAtTp2GivesEveryRankTheTokensOfTp1) {
  std::unique_ptr<Gpt> tp2 = Load(&grid_->comm(ParallelAxis::kTensor));
  std::unique_ptr<Gpt> tp1 = Load(nullptr);
  ASSERT_NE(tp2, nullptr);
  ASSERT_NE(tp1, nullptr);
  const std::vector<int32_t> prompt = {7, 14, 21, 28};
  for (const SampleOptions& options :
       {SampleOptions{.max_new_tokens = 24, .temperature = 1.0, .top_k = 50, .seed = 5},
        SampleOptions{.max_new_tokens = 24, .temperature = 0}}) {
    ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> sharded, Sample(*tp2, prompt, options));
    ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> whole, Sample(*tp1, prompt, options));
    ASSERT_EQ(sharded.size(), 24u);
    EXPECT_EQ(sharded, whole) << "temperature " << options.temperature;
    const std::string mine(reinterpret_cast<const char*>(sharded.data()),
                           sharded.size() * sizeof(int32_t));
    ASSERT_OK_AND_ASSIGN(const std::vector<std::string> all, AllGatherBytes(*world_, mine));
    for (size_t r = 0; r < all.size(); ++r) EXPECT_EQ(all[r], mine) << "rank " << r;
  }
}

TEST_F(GptInferenceTest, DecoderAtTp2GivesTheLogitsOfTp1) {
  std::unique_ptr<Gpt> tp2 = Load(&grid_->comm(ParallelAxis::kTensor));
  std::unique_ptr<Gpt> tp1 = Load(nullptr);
  ASSERT_NE(tp2, nullptr);
  ASSERT_NE(tp1, nullptr);
  ASSERT_OK_AND_ASSIGN(GptDecoder sharded, GptDecoder::Create(*tp2, 2));
  ASSERT_OK_AND_ASSIGN(GptDecoder whole, GptDecoder::Create(*tp1, 2));
  // Two sequences of 16 ids, appended as a prompt of 6 and then one by one.
  std::vector<int32_t> ids(2 * 16);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 53 + 7) % 500);
  const auto columns = [&](int64_t begin, int64_t end) {
    Tensor t = Tensor::Empty({2, end - begin}, DType::kI32).value();
    auto* out = static_cast<int32_t*>(t.raw_data());
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t j = begin; j < end; ++j) *out++ = ids[b * 16 + j];
    }
    return t;
  };
  for (int64_t length = 6; length <= 16; ++length) {
    const int64_t begin = length == 6 ? 0 : length - 1;
    ASSERT_OK_AND_ASSIGN(const Tensor got, sharded.Append(columns(begin, length)));
    ASSERT_OK_AND_ASSIGN(const Tensor alone, whole.Append(columns(begin, length)));
    ASSERT_OK_AND_ASSIGN(const Tensor want, tp1->NextTokenLogits(columns(0, length)));
    ASSERT_OK_AND_ASSIGN(const std::vector<float> g, ReadTensor<float>(got));
    ASSERT_OK_AND_ASSIGN(const std::vector<float> a, ReadTensor<float>(alone));
    ASSERT_OK_AND_ASSIGN(const std::vector<float> w, ReadTensor<float>(want));
    ASSERT_EQ(g.size(), 2u * Tiny().vocab_size);
    for (size_t i = 0; i < w.size(); ++i) {
      const float tolerance = 1e-5f * std::max(1.0f, std::abs(w[i]));
      ASSERT_NEAR(g[i], w[i], tolerance) << "TP 2, " << length << " tokens, logit " << i;
      ASSERT_NEAR(a[i], w[i], tolerance) << "TP 1, " << length << " tokens, logit " << i;
    }
    // Gathered: the same bits on every rank.
    const std::string mine(reinterpret_cast<const char*>(g.data()), g.size() * sizeof(float));
    ASSERT_OK_AND_ASSIGN(const std::vector<std::string> all, AllGatherBytes(*world_, mine));
    for (size_t r = 0; r < all.size(); ++r) ASSERT_EQ(all[r], mine) << "rank " << r;
  }
}

TEST_F(GptInferenceTest, EvaluateOverDpRanksEqualsOneRankOnTheSameSequences) {
  std::unique_ptr<Gpt> tp1 = Load(nullptr);
  std::unique_ptr<Gpt> tp2 = Load(&grid_->comm(ParallelAxis::kTensor));
  ASSERT_NE(tp1, nullptr);
  ASSERT_NE(tp2, nullptr);
  constexpr int64_t kPerRank = 3;
  const int n = world_->size();
  ASSERT_OK_AND_ASSIGN(const EvalResult alone,
                       Evaluate(*tp1, nullptr, Data("val.bin"), n * kPerRank));
  ASSERT_OK_AND_ASSIGN(const EvalResult dp,
                       Evaluate(*tp1, world_.get(), Data("val.bin"), kPerRank));
  EXPECT_EQ(alone.batches, n * kPerRank);
  EXPECT_EQ(dp.batches, kPerRank);
  EXPECT_EQ(dp.tokens, alone.tokens);
  EXPECT_NEAR(dp.loss, alone.loss, 1e-6);
  // TP 2 x DP (world / 2): the same sequences, the TP ranks' sums in another order.
  Communicator& dp2 = grid_->comm(ParallelAxis::kData);
  ASSERT_OK_AND_ASSIGN(const EvalResult tp_dp,
                       Evaluate(*tp2, &dp2, Data("val.bin"), n * kPerRank / dp2.size()));
  EXPECT_EQ(tp_dp.tokens, alone.tokens);
  EXPECT_NEAR(tp_dp.loss, alone.loss, 1e-5);
}

// A token that only the last DP rank reads (in its sequences of the second global batch) and
// the model cannot take: that rank's Forward fails, and every rank returns its error at
// that batch, at once, instead of the others waiting in the final average.
TEST_F(GptInferenceTest, AnErrorOnOneRankEndsEvaluateOnEveryRank) {
  std::unique_ptr<Gpt> tp1 = Load(nullptr);
  ASSERT_NE(tp1, nullptr);
  const int n = world_->size();
  const int64_t bad_sequence = (2 * n - 1) * 2;  // Global batch 1, rank n - 1's first.
  if (world_->rank() == 0) {
    std::vector<int32_t> ids = testing::LearnableTokens(3000, 3);
    ids[bad_sequence * kSeq + 5] = 7000;
    ASSERT_OK(WriteTokenShard(dir_ + "/bad.bin", ids, TokenWidth::kUint16));
  }
  ASSERT_OK(world_->Barrier());
  DataStreamOptions data = Data("bad.bin");
  data.vocab_size = 65536;  // The stream passes the id; the model refuses it.
  const absl::Status status = Evaluate(*tp1, world_.get(), data, 3).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("7000"), std::string::npos) << status;
  if (world_->rank() != n - 1) {
    EXPECT_NE(status.message().find(absl::StrCat(world_->name(), " rank ", n - 1, ": ")),
              std::string::npos)
        << status;
  }
  // Every rank is still in step: a collective after it completes.
  EXPECT_OK(world_->Barrier());
}

// At TP 2 a split that only the last rank cannot open: its DP group agrees on the error, and
// so must the other DP group, whose ranks are its TP peers (they would wait in Forward).
TEST_F(GptInferenceTest, AnErrorOnOneTensorParallelRankEndsEvaluateOnEveryRank) {
  std::unique_ptr<Gpt> tp2 = Load(&grid_->comm(ParallelAxis::kTensor));
  ASSERT_NE(tp2, nullptr);
  const int last = world_->size() - 1;
  DataStreamOptions data = Data("val.bin");
  if (world_->rank() == last) data.shards = {dir_ + "/gone.bin"};
  const absl::Status status = Evaluate(*tp2, &grid_->comm(ParallelAxis::kData), data, 1).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("gone.bin"), std::string::npos) << status;
  // Every rank is still in step: a collective after it completes.
  EXPECT_OK(world_->Barrier());
}

}  // namespace
}  // namespace usine
