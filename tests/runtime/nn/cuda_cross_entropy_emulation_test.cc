// The cross-entropy kernels (cuda_cross_entropy.h) on the CPU, under the CUDA emulator
// (tests/testing/cuda_emulator/README.md), through their launchers: f32 and bf16 logits, rows
// read by pairs (an even padded width) or one element at a time (odd), the vocabulary padded.
// Checked: log-sum-exps, losses and gradients against double precision; the forward pass with
// the gradient gives the forward pass's losses bit for bit, the same gradient in place or not,
// and its bf16 gradient is its f32 one rounded; the padding's gradient is +0; the vocabulary-
// parallel kernels over two slices give the whole row's loss and gradient; the same bits under
// every thread schedule; bf16 rows kept in shared memory give the bits of their f32 copy; and no
// error of the emulator's.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_cross_entropy.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/emulated_kernel_test.h"

namespace usine {
namespace {

namespace ni = nn_internal::cuda;
using kernels_internal::FromFloat;
using kernels_internal::ToFloat;
using testing::cuda_emulator::CpAsync;
using testing::cuda_emulator::DeviceArray;
using testing::cuda_emulator::EmulatedKernelTest;
using testing::cuda_emulator::ExecutionOrder;
using testing::cuda_emulator::ExpectTheSameUnderEveryOrder;
using testing::cuda_emulator::SetExecutionOrder;

// Rows, vocabulary, padded width: pairs with padding, no pairs (odd), a row narrower than a block.
struct Logits {
  int64_t rows, vocab, padded;
};
const Logits kLogits[] = {{5, 1000, 1024}, {3, 999, 1001}, {2, 37, 64}};

std::string LogitsName(const ::testing::TestParamInfo<Logits>& info) {
  return "R" + std::to_string(info.param.rows) + "_V" + std::to_string(info.param.vocab) + "_P" +
         std::to_string(info.param.padded);
}

template <typename T>
bool SameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Relative to the gradient's scale: f32 results within a few f32 roundings of the exact value,
// bf16 ones within one bf16 rounding (u = 2^-8) of a softmax at most 1.
template <typename T>
constexpr double kGradientTolerance = std::is_same_v<T, float> ? 1e-6 : 1.0 / 256;
// Losses and log-sum-exps: f32 sums of up to 1,000 exponentials of logits near 10.
constexpr double kLossTolerance = 1e-5;

// A problem and its double-precision answers.
template <typename TIn>
class CrossEntropyProblem {
 public:
  explicit CrossEntropyProblem(const Logits& s)
      : s_(s),
        logits_(s.rows * s.padded, "logits"),
        targets_(s.rows, "targets"),
        lse_(s.rows),
        values_(s.rows * s.padded) {
    std::mt19937 rng(static_cast<uint32_t>(s.rows * 7 + s.vocab));
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (int64_t i = 0; i < s.rows * s.padded; ++i) {
      // The padding holds a large logit: it must not count.
      logits_[i] = FromFloat<TIn>(i % s.padded < s.vocab ? normal(rng) : 77.0f);
      values_[i] = ToFloat(logits_[i]);
    }
    for (int64_t r = 0; r < s.rows; ++r) {
      targets_[r] = static_cast<int32_t>((r * 7919 + 3) % s.vocab);
      double max = -INFINITY, sum = 0;
      for (int64_t j = 0; j < s.vocab; ++j) max = std::max(max, Value(r, j));
      for (int64_t j = 0; j < s.vocab; ++j) sum += std::exp(Value(r, j) - max);
      lse_[r] = max + std::log(sum);
    }
  }

  const DeviceArray<TIn>& logits() const { return logits_; }
  const int32_t* targets() const { return targets_.data(); }
  double Value(int64_t r, int64_t j) const { return values_[r * s_.padded + j]; }
  double Lse(int64_t r) const { return lse_[r]; }
  double Loss(int64_t r) const { return lse_[r] - Value(r, targets_[r]); }
  double Gradient(int64_t r, int64_t j, float scale) const {
    return scale * (std::exp(Value(r, j) - lse_[r]) - (j == targets_[r] ? 1.0 : 0.0));
  }

  // The largest error of `gradient` [rows, width] (the columns from `begin` on, `valid` of
  // them; the rest padding) relative to |scale|, and whether every padding element is +0.
  template <typename TOut>
  std::pair<double, bool> GradientError(const TOut* gradient, int64_t width, int64_t begin,
                                        int64_t valid, float scale) const {
    double worst = 0;
    bool padding_zero = true;
    for (int64_t r = 0; r < s_.rows; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        const float g = ToFloat(gradient[r * width + c]);
        if (c >= valid) {
          padding_zero &= std::signbit(g) == 0 && g == 0.0f;
          continue;
        }
        worst = std::max(worst, std::fabs(g - Gradient(r, begin + c, scale)) / std::fabs(scale));
      }
    }
    return {worst, padding_zero};
  }

 private:
  Logits s_;
  DeviceArray<TIn> logits_;
  DeviceArray<int32_t> targets_;
  std::vector<double> lse_;
  std::vector<double> values_;
};

class CrossEntropyEmulation : public EmulatedKernelTest<::testing::TestWithParam<Logits>> {};

template <typename TIn>
void ExpectForwardMatchesDouble(const Logits& s) {
  const CrossEntropyProblem<TIn> p(s);
  DeviceArray<float> lse(s.rows, "lse"), losses(s.rows, "losses");
  ASSERT_EQ(ni::LaunchCrossEntropyForward(p.logits().data(), p.targets(), s.rows, s.vocab, s.padded,
                                          lse.data(), losses.data(), nullptr),
            cudaSuccess);
  for (int64_t r = 0; r < s.rows; ++r) {
    EXPECT_NEAR(lse[r], p.Lse(r), kLossTolerance) << "row " << r;
    EXPECT_NEAR(losses[r], p.Loss(r), kLossTolerance) << "row " << r;
  }
}

TEST_P(CrossEntropyEmulation, ForwardMatchesDoublePrecision) {
  ExpectForwardMatchesDouble<float>(GetParam());
  ExpectForwardMatchesDouble<BFloat16>(GetParam());
}

template <typename TIn>
void ExpectBackwardMatchesDouble(const Logits& s) {
  const CrossEntropyProblem<TIn> p(s);
  DeviceArray<float> lse(s.rows, "lse"), losses(s.rows, "losses");
  ASSERT_EQ(ni::LaunchCrossEntropyForward(p.logits().data(), p.targets(), s.rows, s.vocab, s.padded,
                                          lse.data(), losses.data(), nullptr),
            cudaSuccess);
  const float scale = -0.5f;
  DeviceArray<TIn> gradient(s.rows * s.padded, "gradient");
  std::copy_n(p.logits().data(), s.rows * s.padded, gradient.data());
  ASSERT_EQ(ni::LaunchCrossEntropyBackward(p.targets(), lse.data(), s.rows, s.vocab, s.padded,
                                           scale, gradient.data(), nullptr),
            cudaSuccess);
  // The backward pass starts from the log-sum-exp rounded to f32: 1e-5 for f32 logits.
  const auto [error, padding_zero] = p.GradientError(gradient.data(), s.padded, 0, s.vocab, scale);
  EXPECT_LT(error, (std::is_same_v<TIn, float> ? 1e-5 : kGradientTolerance<TIn>));
  EXPECT_TRUE(padding_zero);
}

TEST_P(CrossEntropyEmulation, BackwardMatchesDoublePrecisionInPlace) {
  ExpectBackwardMatchesDouble<float>(GetParam());
  ExpectBackwardMatchesDouble<BFloat16>(GetParam());
}

// The forward pass with the gradient: the forward pass's losses bit for bit, the gradient within
// tolerance, the same bits in place; returns the gradient.
template <typename TIn, typename TOut>
std::vector<TOut> ExpectForwardWithGradientMatches(const Logits& s, float scale) {
  const CrossEntropyProblem<TIn> p(s);
  DeviceArray<float> lse(s.rows, "lse"), losses(s.rows, "losses"), fused(s.rows, "fused");
  DeviceArray<TOut> gradient(s.rows * s.padded, "gradient");
  EXPECT_EQ(ni::LaunchCrossEntropyForward(p.logits().data(), p.targets(), s.rows, s.vocab, s.padded,
                                          lse.data(), losses.data(), nullptr),
            cudaSuccess);
  EXPECT_EQ(ni::LaunchCrossEntropyForwardWithGradient(p.logits().data(), p.targets(), s.rows,
                                                      s.vocab, s.padded, scale, fused.data(),
                                                      gradient.data(), nullptr),
            cudaSuccess);
  for (int64_t r = 0; r < s.rows; ++r) {
    EXPECT_TRUE(SameBits(fused[r], losses[r])) << "row " << r;
  }
  const auto [error, padding_zero] = p.GradientError(gradient.data(), s.padded, 0, s.vocab, scale);
  EXPECT_LT(error, kGradientTolerance<TOut>);
  EXPECT_TRUE(padding_zero);
  if constexpr (std::is_same_v<TIn, TOut>) {
    DeviceArray<TIn> in_place(s.rows * s.padded, "in place");
    std::copy_n(p.logits().data(), s.rows * s.padded, in_place.data());
    EXPECT_EQ(ni::LaunchCrossEntropyForwardWithGradient(in_place.data(), p.targets(), s.rows,
                                                        s.vocab, s.padded, scale, fused.data(),
                                                        in_place.data(), nullptr),
              cudaSuccess);
    int64_t differ = 0;
    for (int64_t i = 0; i < s.rows * s.padded; ++i) differ += !SameBits(in_place[i], gradient[i]);
    EXPECT_EQ(differ, 0) << "elements of the in-place gradient unlike the out-of-place one";
  }
  return gradient.ToVector();
}

TEST_P(CrossEntropyEmulation, ForwardWithGradientKeepsTheLossesBitsAndMatchesDouble) {
  const float scale = 0.25f;
  const std::vector<float> f32 = ExpectForwardWithGradientMatches<float, float>(GetParam(), scale);
  const std::vector<BFloat16> bf16 =
      ExpectForwardWithGradientMatches<float, BFloat16>(GetParam(), scale);
  for (size_t i = 0; i < f32.size(); ++i) {
    ASSERT_EQ(bf16[i].bits, BFloat16::FromFloat(f32[i]).bits)
        << "the bf16 gradient is the f32 one rounded";
  }
  ExpectForwardWithGradientMatches<BFloat16, BFloat16>(GetParam(), scale);
}

TEST_P(CrossEntropyEmulation, ForwardWithGradientRepeatsBitForBitUnderEverySchedule) {
  const Logits& s = GetParam();
  const CrossEntropyProblem<float> p(s);
  auto run = [&](const ExecutionOrder& order) {
    SetExecutionOrder(order);
    DeviceArray<float> losses(s.rows, "losses");
    DeviceArray<BFloat16> gradient(s.rows * s.padded, "gradient");
    EXPECT_EQ(ni::LaunchCrossEntropyForwardWithGradient(p.logits().data(), p.targets(), s.rows,
                                                        s.vocab, s.padded, 1.0f, losses.data(),
                                                        gradient.data(), nullptr),
              cudaSuccess);
    std::vector<uint32_t> bits;
    for (float x : losses.ToVector()) bits.push_back(std::bit_cast<uint32_t>(x));
    for (BFloat16 g : gradient.ToVector()) bits.push_back(g.bits);
    return bits;
  };
  ExpectTheSameUnderEveryOrder(run, CpAsync::kNotUsed);
}

// bf16 logits, whose rows of an even width (a multiple of 8) are kept in shared memory
// (CrossEntropyRowCached), give the losses and gradient of their f32 copy, read from global
// memory, bit for bit; and the same bits under every schedule and landing of the row's copy.
TEST_P(CrossEntropyEmulation, Bf16RowsGiveTheBitsOfTheirF32CopyUnderEverySchedule) {
  const Logits& s = GetParam();
  const CrossEntropyProblem<BFloat16> p(s);
  DeviceArray<float> copy(s.rows * s.padded, "f32 copy");
  for (int64_t i = 0; i < s.rows * s.padded; ++i) copy[i] = ToFloat(p.logits()[i]);
  const auto run = [&](const auto* logits) {
    DeviceArray<float> losses(s.rows, "losses");
    DeviceArray<BFloat16> gradient(s.rows * s.padded, "gradient");
    EXPECT_EQ(
        ni::LaunchCrossEntropyForwardWithGradient(logits, p.targets(), s.rows, s.vocab, s.padded,
                                                  0.5f, losses.data(), gradient.data(), nullptr),
        cudaSuccess);
    std::vector<uint32_t> bits;
    for (float x : losses.ToVector()) bits.push_back(std::bit_cast<uint32_t>(x));
    for (BFloat16 g : gradient.ToVector()) bits.push_back(g.bits);
    return bits;
  };
  const std::vector<uint32_t> want = run(copy.data());
  EXPECT_EQ(run(p.logits().data()), want);
  ExpectTheSameUnderEveryOrder(
      [&](const ExecutionOrder& order) {
        SetExecutionOrder(order);
        return run(p.logits().data());
      },
      CpAsync::kUsed);
}

TEST(CrossEntropyRowCached, TakesAlignedBf16RowsOfAMultipleOf8UpTo112KB) {
  alignas(16) static BFloat16 row[16];
  EXPECT_TRUE(ni::CrossEntropyRowCached(1024, row, row));
  EXPECT_TRUE(ni::CrossEntropyRowCached(50304, row, row + 8));  // GPT-2's padded vocabulary.
  EXPECT_TRUE(ni::CrossEntropyRowCached(57344, row, row));      // 112 KB.
  EXPECT_FALSE(ni::CrossEntropyRowCached(57352, row, row));
  EXPECT_FALSE(ni::CrossEntropyRowCached(1001, row, row));
  EXPECT_FALSE(ni::CrossEntropyRowCached(1020, row, row));
  EXPECT_FALSE(ni::CrossEntropyRowCached(1024, row + 1, row));
  EXPECT_FALSE(ni::CrossEntropyRowCached(1024, row, row + 4));
}

// The vocabulary cut into two slices of `count` columns (the second one shorter), as two ranks of
// a tensor-parallel group hold them: the group's max, sums and targets' logits combined on the
// host give the whole row's loss, and each slice's gradient is the whole row's.
template <typename TIn, typename TOut>
void ExpectVocabParallelMatchesTheWholeRow(const Logits& s) {
  const CrossEntropyProblem<TIn> p(s);
  const int64_t first = (s.vocab + 1) / 2;
  const int64_t count = first + first % 2;  // Even: pairs where the whole row has them.
  const int64_t begin[2] = {0, first};
  const int64_t valid[2] = {first, s.vocab - first};
  std::deque<DeviceArray<TIn>> slices;  // Not movable: a deque constructs them in place.
  for (int k = 0; k < 2; ++k) {
    slices.emplace_back(s.rows * count, "slice");
    for (int64_t r = 0; r < s.rows; ++r) {
      for (int64_t c = 0; c < count; ++c) {
        slices[k][r * count + c] =
            c < valid[k] ? p.logits()[r * s.padded + begin[k] + c] : FromFloat<TIn>(55.0f);
      }
    }
  }
  DeviceArray<float> max0(s.rows, "max"), max1(s.rows, "max"), group_max(s.rows, "group max");
  ASSERT_EQ(ni::LaunchSliceRowMax(slices[0].data(), s.rows, count, valid[0], max0.data(), nullptr),
            cudaSuccess);
  ASSERT_EQ(ni::LaunchSliceRowMax(slices[1].data(), s.rows, count, valid[1], max1.data(), nullptr),
            cudaSuccess);
  for (int64_t r = 0; r < s.rows; ++r) {
    // Each slice's max over its valid columns only (its padding holds a larger 55).
    for (int k = 0; k < 2; ++k) {
      double max = -INFINITY;
      for (int64_t c = 0; c < valid[k]; ++c) max = std::max(max, p.Value(r, begin[k] + c));
      EXPECT_EQ((k == 0 ? max0 : max1)[r], max) << "slice " << k << " row " << r;
    }
    group_max[r] = std::max(max0[r], max1[r]);
  }
  DeviceArray<float> sums0(2 * s.rows, "sums"), sums1(2 * s.rows, "sums"), lse(s.rows, "lse");
  ASSERT_EQ(ni::LaunchSliceSumExpAndTarget(slices[0].data(), p.targets(), s.rows, begin[0], count,
                                           valid[0], group_max.data(), sums0.data(), nullptr),
            cudaSuccess);
  ASSERT_EQ(ni::LaunchSliceSumExpAndTarget(slices[1].data(), p.targets(), s.rows, begin[1], count,
                                           valid[1], group_max.data(), sums1.data(), nullptr),
            cudaSuccess);
  for (int64_t r = 0; r < s.rows; ++r) {
    lse[r] = group_max[r] + std::log(sums0[r] + sums1[r]);
    const double loss = lse[r] - (sums0[s.rows + r] + sums1[s.rows + r]);
    EXPECT_NEAR(loss, p.Loss(r), kLossTolerance) << "row " << r;
  }
  const float scale = 2.0f;
  for (int k = 0; k < 2; ++k) {
    DeviceArray<TOut> gradient(s.rows * count, "gradient");
    ASSERT_EQ(ni::LaunchSliceCrossEntropyGradient(slices[k].data(), p.targets(), lse.data(), s.rows,
                                                  begin[k], count, valid[k], scale, gradient.data(),
                                                  nullptr),
              cudaSuccess);
    const auto [error, padding_zero] =
        p.GradientError(gradient.data(), count, begin[k], valid[k], scale);
    EXPECT_LT(error, (std::is_same_v<TOut, float> ? 1e-5 : kGradientTolerance<TOut>))
        << "slice " << k;
    EXPECT_TRUE(padding_zero) << "slice " << k;
  }
}

TEST_P(CrossEntropyEmulation, VocabParallelSlicesGiveTheWholeRowsLossAndGradient) {
  ExpectVocabParallelMatchesTheWholeRow<float, float>(GetParam());
  ExpectVocabParallelMatchesTheWholeRow<float, BFloat16>(GetParam());
  ExpectVocabParallelMatchesTheWholeRow<BFloat16, BFloat16>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Logits, CrossEntropyEmulation, ::testing::ValuesIn(kLogits), LogitsName);

}  // namespace
}  // namespace usine
