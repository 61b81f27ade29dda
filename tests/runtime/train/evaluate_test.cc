// Evaluate on one rank: the mean of the model's Forward losses over the split's batches in
// file order, however the options ask for shuffling; its batch and token counts; its errors.
#include "runtime/train/evaluate.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/data/token_shard.h"
#include "runtime/nn/gpt.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSeq = 16;
constexpr int64_t kBatch = 2;

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_evaluate_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // 1201 tokens: 75 sequences of 16 (+1), 37 batches of 2.
    std::vector<int32_t> ids(1201);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 31 + i / 11) % 500);
    ASSERT_OK(WriteTokenShard(dir_ + "/val.bin", ids, TokenWidth::kUint16));
    ASSERT_OK_AND_ASSIGN(model_, Gpt::Create({.config = Tiny(), .seed = 21}));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  DataStreamOptions Data() const {
    DataStreamOptions data;
    data.shards = {dir_ + "/val.bin"};
    data.vocab_size = Tiny().vocab_size;
    data.seq_len = kSeq;
    data.batch_size = kBatch;
    return data;
  }

  // The mean of Forward's losses over the first `batches` batches in file order.
  double MeanForwardLoss(int64_t batches) {
    DataStreamOptions data = Data();
    data.shuffle = false;
    std::unique_ptr<DataStream> stream = DataStream::Open(data).value();
    double sum = 0;
    for (int64_t i = 0; i < batches; ++i) {
      const Batch batch = stream->Next().value();
      sum += model_->Forward(batch.tokens).value();
      model_->ReleaseActivations();
    }
    return sum / static_cast<double>(batches);
  }

  std::string dir_;
  std::unique_ptr<Gpt> model_;
};

TEST_F(EvaluateTest, LossIsTheMeanOfForwardLossesInFileOrder) {
  DataStreamOptions data = Data();
  data.shuffle = true;  // Ignored: the split is read in order.
  data.seed = 99;
  ASSERT_OK_AND_ASSIGN(const EvalResult three, Evaluate(*model_, nullptr, data, 3));
  EXPECT_EQ(three.batches, 3);
  EXPECT_EQ(three.tokens, 3 * kBatch * kSeq);
  EXPECT_EQ(three.loss, MeanForwardLoss(3));
  EXPECT_DOUBLE_EQ(three.perplexity(), std::exp(three.loss));
  // An untrained model is close to uniform over the vocabulary.
  EXPECT_NEAR(three.loss, std::log(Tiny().vocab_size), 0.1);

  ASSERT_OK_AND_ASSIGN(const EvalResult whole, Evaluate(*model_, nullptr, data, 0));
  EXPECT_EQ(whole.batches, 37);
  EXPECT_EQ(whole.tokens, 37 * kBatch * kSeq);
  EXPECT_EQ(whole.loss, MeanForwardLoss(37));
  ASSERT_OK_AND_ASSIGN(const EvalResult capped, Evaluate(*model_, nullptr, data, 1000));
  EXPECT_EQ(capped.batches, 37);
  EXPECT_EQ(capped.loss, whole.loss);
  // Nothing is left for a Backward.
  EXPECT_THAT(std::string(model_->Backward().message()), HasSubstr("before Forward"));
}

TEST_F(EvaluateTest, ErrorsNameTheSplitAndTheOption) {
  absl::Status s = Evaluate(*model_, nullptr, Data(), -1).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("max_batches -1"));
  DataStreamOptions big = Data();
  big.batch_size = 80;
  s = Evaluate(*model_, nullptr, big, 0).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("the split (1 shards from " + dir_ +
                                     "/val.bin) holds 75 sequences of 16 tokens, fewer than one "
                                     "batch of dp 1 x 80"));
  DataStreamOptions missing = Data();
  missing.shards = {dir_ + "/nope.bin"};
  s = Evaluate(*model_, nullptr, missing, 0).status();
  EXPECT_THAT(s.message(), HasSubstr("Evaluate: data"));
  EXPECT_THAT(s.message(), HasSubstr("nope.bin"));
}

}  // namespace
}  // namespace usine
