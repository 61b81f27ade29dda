#include "runtime/nn/gpt_decoder.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/runtime/nn/context_ids.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::ContextIds;
using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// vocab 500, block 64, 2 layers, 4 heads of 8.
GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// The tiny GPT with its matrices ten times GPT-2's initial scale (stddev 0.2): the attention
// then weighs the positions far from evenly, so that a position attending to the wrong ones
// moves the logits well past the tolerances below.
template <typename T>
std::unique_ptr<Gpt> RandomTiny(DType dtype) {
  std::unique_ptr<Gpt> model = Gpt::Create({.config = Tiny(), .seed = 21, .dtype = dtype}).value();
  for (const NamedParameter& p : model->Parameters()) {
    if (p.parameter->value.rank() != 2) continue;  // LayerNorms and biases stay as they are.
    const absl::Span<T> weights = p.parameter->value.host_span<T>().value();
    for (T& w : weights) w *= 10;
  }
  return model;
}

// Appends chunks of these sizes to a decoder of two sequences and checks, after each, every
// logit against NextTokenLogits of the whole context: within `tolerance` relative to
// max(1, |logit|).
template <typename T>
void ExpectAppendsGiveNextTokenLogits(DType dtype, double tolerance) {
  constexpr int64_t kBatch = 2;
  const int64_t v = Tiny().vocab_size;
  std::unique_ptr<Gpt> model = RandomTiny<T>(dtype);
  ASSERT_OK_AND_ASSIGN(GptDecoder decoder, GptDecoder::Create(*model, kBatch));
  int64_t length = 0;
  for (const int64_t chunk : {5, 1, 1, 1, 3, 1, 7, 1}) {
    ASSERT_OK_AND_ASSIGN(const Tensor got,
                         decoder.Append(ContextIds(kBatch, length, length + chunk)));
    length += chunk;
    ASSERT_EQ(decoder.length(), length);
    ASSERT_EQ(got.shape(), Shape({kBatch, v}));
    ASSERT_EQ(got.dtype(), dtype);
    ASSERT_OK_AND_ASSIGN(const Tensor want, model->NextTokenLogits(ContextIds(kBatch, 0, length)));
    ASSERT_OK_AND_ASSIGN(const std::vector<T> g, ReadTensor<T>(got));
    ASSERT_OK_AND_ASSIGN(const std::vector<T> w, ReadTensor<T>(want));
    double largest = 0;  // The logits are not all alike: a wrong context would show.
    for (size_t i = 0; i < w.size(); ++i) {
      largest = std::max(largest, std::abs(static_cast<double>(w[i])));
      ASSERT_NEAR(g[i], w[i], tolerance * std::max(1.0, std::abs(static_cast<double>(w[i]))))
          << "after " << length << " tokens, row " << i / v << ", id " << i % v;
    }
    EXPECT_GT(largest, 0.5);
  }
}

TEST(GptDecoder, EachAppendGivesNextTokenLogitsOfTheWholeContextInF32) {
  ExpectAppendsGiveNextTokenLogits<float>(DType::kF32, 1e-5);
}

TEST(GptDecoder, EachAppendGivesNextTokenLogitsOfTheWholeContextInF64) {
  ExpectAppendsGiveNextTokenLogits<double>(DType::kF64, 1e-12);
}

TEST(GptDecoder, AppendingPastTheBlockSizeIsAnErrorNamingItThatChangesNothing) {
  std::unique_ptr<Gpt> model = RandomTiny<float>(DType::kF32);
  ASSERT_OK_AND_ASSIGN(GptDecoder decoder, GptDecoder::Create(*model));
  ASSERT_OK(decoder.Append(ContextIds(1, 0, 60)).status());
  const absl::StatusOr<Tensor> over = decoder.Append(ContextIds(1, 60, 65));
  EXPECT_TRUE(absl::IsInvalidArgument(over.status())) << over.status();
  EXPECT_THAT(std::string(over.status().message()),
              HasSubstr("5 more tokens after 60 exceed the block size 64"));
  EXPECT_EQ(decoder.length(), 60);
  // The last four positions still fit, and give the logits of the whole block.
  ASSERT_OK_AND_ASSIGN(const Tensor got, decoder.Append(ContextIds(1, 60, 64)));
  ASSERT_OK_AND_ASSIGN(const Tensor want, model->NextTokenLogits(ContextIds(1, 0, 64)));
  ASSERT_OK_AND_ASSIGN(const std::vector<float> g, ReadTensor<float>(got));
  ASSERT_OK_AND_ASSIGN(const std::vector<float> w, ReadTensor<float>(want));
  for (size_t i = 0; i < w.size(); ++i) {
    ASSERT_NEAR(g[i], w[i], 1e-5 * std::max(1.0f, std::abs(w[i]))) << "id " << i;
  }
  EXPECT_THAT(std::string(decoder.Append(ContextIds(1, 64, 65)).status().message()),
              HasSubstr("1 more tokens after 64 exceed the block size 64"));
}

TEST(GptDecoder, BadTokensAreErrorsAndAppendKeepsNothingForABackward) {
  std::unique_ptr<Gpt> model = RandomTiny<float>(DType::kF32);
  ASSERT_OK_AND_ASSIGN(GptDecoder decoder, GptDecoder::Create(*model, 2));
  EXPECT_THAT(std::string(decoder.Append(ContextIds(1, 0, 3)).status().message()),
              HasSubstr("expected [2, Tn >= 1], got i32[1, 3]"));
  ASSERT_OK_AND_ASSIGN(const Tensor outside,
                       MakeTensor(Device::Cpu(), {2, 2}, std::vector<int32_t>{1, 2, 3, 500}));
  const absl::StatusOr<Tensor> bad_id = decoder.Append(outside);
  EXPECT_TRUE(absl::IsInvalidArgument(bad_id.status())) << bad_id.status();
  EXPECT_THAT(std::string(bad_id.status().message()),
              HasSubstr("token 500 at [1, 1] is outside the vocabulary"));
  EXPECT_EQ(decoder.length(), 0);
  EXPECT_TRUE(absl::IsInvalidArgument(GptDecoder::Create(*model, 0).status()));
  // A training Forward's activations are dropped by Append, as by Logits.
  ASSERT_OK(model->Forward(ContextIds(2, 0, 9)).status());
  ASSERT_OK(decoder.Append(ContextIds(2, 0, 4)).status());
  EXPECT_THAT(std::string(model->Backward().message()), HasSubstr("before Forward"));
}

}  // namespace
}  // namespace usine
