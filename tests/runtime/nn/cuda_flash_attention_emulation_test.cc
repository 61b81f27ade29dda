// The flash attention kernels on the CPU, under the CUDA emulator (tests/testing/cuda_emulator/
// README.md): the bf16 tensor-core kernels (cuda_flash_attention_bf16.h) and the f32 FMA ones
// (cuda_flash_attention.h), through their public launchers, on shapes that cover one row, tiles
// cut by the sequence's end, several tiles, B and H above 1 and head sizes that pad to each of the
// kernels' 32, 64 and 128. Checked: the results against a double-precision causal attention (out,
// lse, dq, dk, dv), the same bits again under every thread schedule and cp.async landing moment
// the emulator has (races), the bf16 arrays' contract (the f32 launch's results, rounded), every
// output element written (outputs are poisoned with NaNs first), and the launchers' refusals. The
// emulator's own checks (barriers, warp primitives, shared memory bounds, device array guards)
// hold throughout: an error fails the launch's check, a fatal one ends the test's process.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_flash_attention.h"
#include "runtime/nn/internal/cuda_flash_attention_bf16.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine {
namespace {

namespace ni = nn_internal::cuda;
using kernels_internal::ToFloat;
using testing::cuda_emulator::AllExecutionOrders;
using testing::cuda_emulator::CpAsyncLanding;
using testing::cuda_emulator::DescribeExecutionOrder;
using testing::cuda_emulator::DeviceArray;
using testing::cuda_emulator::ErrorCount;
using testing::cuda_emulator::ExecutionOrder;
using testing::cuda_emulator::SetExecutionOrder;
using testing::cuda_emulator::TotalStatistics;

// bf16's unit roundoff u = 2^-8. The bf16 kernels are held to 4 u of the largest reference
// element (for lse, 4 u absolute: a score's error is absolute), as the gpu tier holds them
// (cuda_flash_attention_test.cc's kBf16FlashTolerance, which derives it); here they err by at
// most about 1.2 u.
constexpr double kUnitRoundoff = 1.0 / 256;
constexpr double kBf16Tolerance = 4 * kUnitRoundoff;
// The f32 kernels round each product and sum in f32 (u = 2^-24) over at most a few hundred
// terms: 2^-16 of the largest reference element leaves room for that; here they err by under
// 2^-19.
constexpr double kF32Tolerance = 1.0 / 65536;

constexpr uint32_t kPoisonF32 = 0x7FC1DEADu;
constexpr uint16_t kPoisonBf16 = 0x7FC1u;

// FlashShape{batch, seq, heads, head_dim}.
const ni::FlashShape kShapes[] = {
    {1, 1, 1, 16},   {1, 17, 1, 64},  {1, 64, 2, 64},   {2, 100, 3, 64},
    {1, 130, 1, 32}, {1, 256, 2, 64}, {1, 200, 1, 128}, {1, 77, 1, 48},
    {1, 65, 1, 80},  {1, 300, 2, 16}, {1, 513, 1, 96},
};

std::string ShapeName(const ::testing::TestParamInfo<ni::FlashShape>& info) {
  const ni::FlashShape& s = info.param;
  return "B" + std::to_string(s.batch) + "_H" + std::to_string(s.heads) + "_T" +
         std::to_string(s.seq) + "_D" + std::to_string(s.head_dim);
}

template <typename T>
void Poison(const DeviceArray<T>& a) {
  for (size_t i = 0; i < a.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      std::memcpy(&a[i], &kPoisonF32, sizeof(float));
    } else {
      a[i].bits = kPoisonBf16;
    }
  }
}

template <typename T>
bool IsPoison(T x) {
  if constexpr (std::is_same_v<T, float>) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof(bits));
    return bits == kPoisonF32;
  } else {
    return x.bits == kPoisonBf16;
  }
}

template <typename T>
void CopyTo(const std::vector<T>& from, const DeviceArray<T>& to) {
  std::copy(from.begin(), from.end(), to.data());
}

// Success when a and b hold the same bits.
template <typename T>
::testing::AssertionResult SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  size_t differ = 0, first = 0;
  for (size_t i = a.size(); i-- > 0;) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) ++differ, first = i;
  }
  if (differ == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << differ << " of " << a.size() << " elements differ, the first at " << first << " ("
         << ToFloat(a[first]) << " vs " << ToFloat(b[first]) << ")";
}

// Success when every element is written (no poison left) and finite.
template <typename T>
::testing::AssertionResult AllWrittenAndFinite(const std::vector<T>& values) {
  size_t poison = 0, non_finite = 0;
  for (T x : values) {
    poison += IsPoison(x);
    non_finite += !std::isfinite(ToFloat(x));
  }
  if (poison == 0 && non_finite == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << poison << " of " << values.size() << " elements still hold the poison, " << non_finite
         << " are not finite";
}

// The largest |got - want| and |want| over some elements.
struct Deviation {
  double largest_error = 0;
  double largest_reference = 0;

  void Add(double got, double want) {
    const double error = std::abs(got - want);
    largest_error = std::isnan(error) ? INFINITY : std::max(largest_error, error);
    largest_reference = std::max(largest_reference, std::abs(want));
  }
};

::testing::AssertionResult WithinOfLargest(const Deviation& d, double tolerance) {
  if (d.largest_error <= tolerance * d.largest_reference) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max|error| " << d.largest_error << " = " << d.largest_error / d.largest_reference
         << " of max|reference| " << d.largest_reference << ", beyond " << tolerance;
}

::testing::AssertionResult WithinAbsolute(const Deviation& d, double tolerance) {
  if (d.largest_error <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max|error| " << d.largest_error << ", beyond " << tolerance;
}

// Causal attention in double precision (cpu_attention.h's definition) and its gradients.
struct Reference {
  std::vector<double> out, lse, dqkv;
};

Reference AttentionInDouble(const ni::FlashShape& s, const std::vector<float>& qkv,
                            const std::vector<float>& dout) {
  const int64_t T = s.seq, D = s.head_dim, C = s.heads * D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Reference r{std::vector<double>(dout.size()), std::vector<double>(s.batch * s.heads * T),
              std::vector<double>(qkv.size())};
  auto at = [&](int64_t b, int64_t t, int part, int64_t h) {
    return &qkv[((b * T + t) * 3 + part) * C + h * D];
  };
  std::vector<double> p(T), dp(T);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        const float* q = at(b, t, 0, h);
        const float* g = &dout[(b * T + t) * C + h * D];
        double largest = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double score = 0;
          for (int64_t d = 0; d < D; ++d) score += double{q[d]} * at(b, j, 1, h)[d];
          p[j] = score * scale;
          largest = std::max(largest, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += std::exp(p[j] - largest);
        const double lse = largest + std::log(sum);
        r.lse[(b * s.heads + h) * T + t] = lse;
        for (int64_t j = 0; j <= t; ++j) p[j] = std::exp(p[j] - lse);
        double delta = 0;
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t j = 0; j <= t; ++j) o += p[j] * at(b, j, 2, h)[d];
          r.out[(b * T + t) * C + h * D + d] = o;
          delta += o * g[d];
        }
        for (int64_t j = 0; j <= t; ++j) {
          dp[j] = 0;
          for (int64_t d = 0; d < D; ++d) dp[j] += double{g[d]} * at(b, j, 2, h)[d];
        }
        for (int64_t j = 0; j <= t; ++j) {
          const double ds = p[j] * (dp[j] - delta);
          for (int64_t d = 0; d < D; ++d) {
            r.dqkv[((b * T + t) * 3 + 0) * C + h * D + d] += scale * ds * at(b, j, 1, h)[d];
            r.dqkv[((b * T + j) * 3 + 1) * C + h * D + d] += scale * ds * q[d];
            r.dqkv[((b * T + j) * 3 + 2) * C + h * D + d] += p[j] * g[d];
          }
        }
      }
    }
  }
  return r;
}

template <typename T>
using ForwardLauncher = cudaError_t (*)(const T* qkv, const ni::FlashShape& shape, T* out,
                                        float* lse, cudaStream_t stream);
template <typename T>
using BackwardLauncher = cudaError_t (*)(const T* qkv, const T* out, const T* dout,
                                         const float* lse, const ni::FlashShape& shape, T* dqkv,
                                         float* scratch, cudaStream_t stream);

template <typename T>
struct ForwardResults {
  std::vector<T> out;
  std::vector<float> lse;
};

// One shape's inputs (uniform in [-2, 2] and bf16 values, so that the f32 and bf16 arrays hold
// the same numbers; scores q.k / sqrt(D) then have an r.m.s. of 4/3), and launches of the
// kernels on them with poisoned outputs, each expected to return cudaSuccess with no emulator
// error.
class FlashAttentionEmulation : public ::testing::TestWithParam<ni::FlashShape> {
 protected:
  void TearDown() override { SetExecutionOrder({}); }

  FlashAttentionEmulation()
      : shape_(GetParam()),
        qkv_size_(shape_.batch * shape_.seq * 3 * shape_.heads * shape_.head_dim),
        out_size_(qkv_size_ / 3),
        lse_size_(shape_.batch * shape_.heads * shape_.seq),
        qkv_f32_(qkv_size_, "qkv (f32)"),
        dout_f32_(out_size_, "dout (f32)"),
        qkv_bf16_(qkv_size_, "qkv (bf16)"),
        dout_bf16_(out_size_, "dout (bf16)") {
    const ni::FlashShape& s = shape_;
    std::mt19937_64 rng(1000003 * s.batch + 10007 * s.heads + 101 * s.seq + s.head_dim);
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    auto fill = [&](const DeviceArray<float>& f32, const DeviceArray<BFloat16>& bf16) {
      for (size_t i = 0; i < f32.size(); ++i) {
        bf16[i] = BFloat16::FromFloat(uniform(rng));
        f32[i] = bf16[i].ToFloat();
      }
    };
    fill(qkv_f32_, qkv_bf16_);
    fill(dout_f32_, dout_bf16_);
  }

  template <typename T>
  const DeviceArray<T>& qkv() const {
    if constexpr (std::is_same_v<T, float>) {
      return qkv_f32_;
    } else {
      return qkv_bf16_;
    }
  }
  template <typename T>
  const DeviceArray<T>& dout() const {
    if constexpr (std::is_same_v<T, float>) {
      return dout_f32_;
    } else {
      return dout_bf16_;
    }
  }

  const Reference& reference() {
    if (reference_.out.empty()) {
      reference_ = AttentionInDouble(shape_, qkv_f32_.ToVector(), dout_f32_.ToVector());
    }
    return reference_;
  }

  template <typename T>
  ForwardResults<T> Forward(ForwardLauncher<T> launch, const std::string& what) {
    DeviceArray<T> out(out_size_, "out");
    DeviceArray<float> lse(lse_size_, "lse");
    Poison(out);
    Poison(lse);
    const int errors = ErrorCount();
    EXPECT_EQ(launch(qkv<T>().data(), shape_, out.data(), lse.data(), nullptr), cudaSuccess)
        << what;
    EXPECT_EQ(ErrorCount(), errors) << what << ": the emulator reported errors (stderr)";
    return {out.ToVector(), lse.ToVector()};
  }

  // From the forward pass's `forward` results.
  template <typename T>
  std::vector<T> Backward(BackwardLauncher<T> launch, const ForwardResults<T>& forward,
                          const std::string& what) {
    DeviceArray<T> out(out_size_, "out (backward input)"), dqkv(qkv_size_, "dqkv");
    DeviceArray<float> lse(lse_size_, "lse (backward input)");
    DeviceArray<float> scratch(ni::FlashAttentionBackwardScratch(shape_), "scratch");
    CopyTo(forward.out, out);
    CopyTo(forward.lse, lse);
    Poison(dqkv);
    Poison(scratch);
    const int errors = ErrorCount();
    EXPECT_EQ(launch(qkv<T>().data(), out.data(), dout<T>().data(), lse.data(), shape_, dqkv.data(),
                     scratch.data(), nullptr),
              cudaSuccess)
        << what;
    EXPECT_EQ(ErrorCount(), errors) << what << ": the emulator reported errors (stderr)";
    return dqkv.ToVector();
  }

  // The results against the reference: out and dv within `tolerance` of their largest element,
  // lse within it absolutely, dq and dk too (at T = 1, where the reference's are 0, within it of
  // dv's largest).
  template <typename T>
  void ExpectNearReference(const ForwardResults<T>& forward, const std::vector<T>& dqkv,
                           double tolerance, const std::string& what) {
    const Reference& r = reference();
    Deviation out, lse, dq, dk, dv;
    for (size_t i = 0; i < r.out.size(); ++i) out.Add(ToFloat(forward.out[i]), r.out[i]);
    for (size_t i = 0; i < r.lse.size(); ++i) lse.Add(forward.lse[i], r.lse[i]);
    const int64_t C = shape_.heads * shape_.head_dim;
    for (size_t i = 0; i < r.dqkv.size(); ++i) {
      Deviation* parts[] = {&dq, &dk, &dv};
      parts[i / C % 3]->Add(ToFloat(dqkv[i]), r.dqkv[i]);
    }
    EXPECT_TRUE(WithinOfLargest(out, tolerance)) << what << ": out";
    EXPECT_TRUE(WithinAbsolute(lse, tolerance)) << what << ": lse";
    if (shape_.seq == 1) {
      // The reference's dq and dk are 0; the kernels' are the rounding residue of dp - delta,
      // bounded by the tolerance of the gradients' scale (dv's).
      EXPECT_LE(dq.largest_error, tolerance * dv.largest_reference) << what << ": dq";
      EXPECT_LE(dk.largest_error, tolerance * dv.largest_reference) << what << ": dk";
    } else {
      EXPECT_TRUE(WithinOfLargest(dq, tolerance)) << what << ": dq";
      EXPECT_TRUE(WithinOfLargest(dk, tolerance)) << what << ": dk";
    }
    EXPECT_TRUE(WithinOfLargest(dv, tolerance)) << what << ": dv";
  }

  const ni::FlashShape shape_;
  const size_t qkv_size_, out_size_, lse_size_;
  const DeviceArray<float> qkv_f32_, dout_f32_;
  const DeviceArray<BFloat16> qkv_bf16_, dout_bf16_;
  Reference reference_;
};

// --- The bf16 kernels (mma.sync, ldmatrix, cp.async for bf16 arrays).
constexpr ForwardLauncher<float> kBf16ForwardF32 = ni::LaunchBf16FlashAttentionForward;
constexpr ForwardLauncher<BFloat16> kBf16ForwardBf16 = ni::LaunchBf16FlashAttentionForward;
constexpr BackwardLauncher<float> kBf16BackwardF32 = ni::LaunchBf16FlashAttentionBackward;
constexpr BackwardLauncher<BFloat16> kBf16BackwardBf16 = ni::LaunchBf16FlashAttentionBackward;

class Bf16FlashAttentionEmulation : public FlashAttentionEmulation {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        ni::Bf16FlashAttentionTakes(shape_, qkv_f32_.data(), dout_f32_.data(), qkv_f32_.data()));
    ASSERT_TRUE(
        ni::Bf16FlashAttentionTakes(shape_, qkv_bf16_.data(), dout_bf16_.data(), qkv_bf16_.data()));
  }
};

TEST_P(Bf16FlashAttentionEmulation, MatchesDoubleReferenceWithin4UnitRoundoffs) {
  const ForwardResults<float> f32 = Forward(kBf16ForwardF32, "forward, f32 arrays");
  ExpectNearReference(f32, Backward(kBf16BackwardF32, f32, "backward, f32 arrays"), kBf16Tolerance,
                      "f32 arrays");
  const ForwardResults<BFloat16> bf16 = Forward(kBf16ForwardBf16, "forward, bf16 arrays");
  ExpectNearReference(bf16, Backward(kBf16BackwardBf16, bf16, "backward, bf16 arrays"),
                      kBf16Tolerance, "bf16 arrays");
}

// Every schedule with every cp.async landing gives the first run's bits (f32 arrays have no
// cp.async: their landings are the same runs).
TEST_P(Bf16FlashAttentionEmulation, RepeatsBitForBitAcrossSchedules) {
  const ForwardResults<float> f32 = Forward(kBf16ForwardF32, "forward, f32 arrays");
  const std::vector<float> dqkv_f32 = Backward(kBf16BackwardF32, f32, "backward, f32 arrays");
  const ForwardResults<BFloat16> bf16 = Forward(kBf16ForwardBf16, "forward, bf16 arrays");
  const std::vector<BFloat16> dqkv_bf16 =
      Backward(kBf16BackwardBf16, bf16, "backward, bf16 arrays");
  const int64_t copies = TotalStatistics().cp_async_copies;
  for (const ExecutionOrder& order : AllExecutionOrders()) {
    const std::string what = DescribeExecutionOrder(order);
    SetExecutionOrder(order);
    if (order.cp_async_landing == CpAsyncLanding::kAtWait) {
      const ForwardResults<float> f32_again = Forward(kBf16ForwardF32, what);
      EXPECT_TRUE(SameBits(f32_again.out, f32.out)) << what << ": out, f32 arrays";
      EXPECT_TRUE(SameBits(f32_again.lse, f32.lse)) << what << ": lse, f32 arrays";
      EXPECT_TRUE(SameBits(Backward(kBf16BackwardF32, f32, what), dqkv_f32))
          << what << ": dqkv, f32 arrays";
    }
    const ForwardResults<BFloat16> bf16_again = Forward(kBf16ForwardBf16, what);
    EXPECT_TRUE(SameBits(bf16_again.out, bf16.out)) << what << ": out, bf16 arrays";
    EXPECT_TRUE(SameBits(bf16_again.lse, bf16.lse)) << what << ": lse, bf16 arrays";
    EXPECT_TRUE(SameBits(Backward(kBf16BackwardBf16, bf16, what), dqkv_bf16))
        << what << ": dqkv, bf16 arrays";
  }
  SetExecutionOrder({});
  // The landings made a difference to run: bf16 arrays are copied by cp.async.
  EXPECT_GT(TotalStatistics().cp_async_copies, copies);
}

// The header's contract: the bits of the f32 launch on f32 arrays holding the same values, each
// result rounded to bf16; for the backward pass, on the bf16 forward's out and lse.
TEST_P(Bf16FlashAttentionEmulation, Bf16ArraysGiveTheF32ResultsRounded) {
  const ForwardResults<float> f32 = Forward(kBf16ForwardF32, "forward, f32 arrays");
  const ForwardResults<BFloat16> bf16 = Forward(kBf16ForwardBf16, "forward, bf16 arrays");
  std::vector<BFloat16> out_rounded(f32.out.size());
  for (size_t i = 0; i < f32.out.size(); ++i) out_rounded[i] = BFloat16::FromFloat(f32.out[i]);
  EXPECT_TRUE(SameBits(bf16.out, out_rounded)) << "out";
  EXPECT_TRUE(SameBits(bf16.lse, f32.lse)) << "lse";

  ForwardResults<float> bf16_as_f32{std::vector<float>(bf16.out.size()), bf16.lse};
  for (size_t i = 0; i < bf16.out.size(); ++i) bf16_as_f32.out[i] = bf16.out[i].ToFloat();
  const std::vector<float> dqkv_f32 =
      Backward(kBf16BackwardF32, bf16_as_f32, "backward, f32 arrays of the bf16 forward's");
  const std::vector<BFloat16> dqkv_bf16 =
      Backward(kBf16BackwardBf16, bf16, "backward, bf16 arrays");
  std::vector<BFloat16> dqkv_rounded(dqkv_f32.size());
  for (size_t i = 0; i < dqkv_f32.size(); ++i) dqkv_rounded[i] = BFloat16::FromFloat(dqkv_f32[i]);
  EXPECT_TRUE(SameBits(dqkv_bf16, dqkv_rounded)) << "dqkv";
}

TEST_P(Bf16FlashAttentionEmulation, WritesEveryOutput) {
  const ForwardResults<float> f32 = Forward(kBf16ForwardF32, "forward, f32 arrays");
  EXPECT_TRUE(AllWrittenAndFinite(f32.out)) << "out, f32 arrays";
  EXPECT_TRUE(AllWrittenAndFinite(f32.lse)) << "lse, f32 arrays";
  EXPECT_TRUE(AllWrittenAndFinite(Backward(kBf16BackwardF32, f32, "backward, f32 arrays")))
      << "dqkv, f32 arrays";
  const ForwardResults<BFloat16> bf16 = Forward(kBf16ForwardBf16, "forward, bf16 arrays");
  EXPECT_TRUE(AllWrittenAndFinite(bf16.out)) << "out, bf16 arrays";
  EXPECT_TRUE(AllWrittenAndFinite(bf16.lse)) << "lse, bf16 arrays";
  EXPECT_TRUE(AllWrittenAndFinite(Backward(kBf16BackwardBf16, bf16, "backward, bf16 arrays")))
      << "dqkv, bf16 arrays";
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16FlashAttentionEmulation, ::testing::ValuesIn(kShapes),
                         ShapeName);

// --- The f32 kernels (FMAs from shared memory; no cp.async).
class F32FlashAttentionEmulation : public FlashAttentionEmulation {};

TEST_P(F32FlashAttentionEmulation, MatchesDoubleReferenceWithin2ToTheMinus16) {
  const ForwardResults<float> f32 = Forward<float>(ni::LaunchFlashAttentionForward, "forward");
  ExpectNearReference(f32, Backward<float>(ni::LaunchFlashAttentionBackward, f32, "backward"),
                      kF32Tolerance, "f32 kernels");
}

TEST_P(F32FlashAttentionEmulation, RepeatsBitForBitAcrossSchedules) {
  const ForwardResults<float> f32 = Forward<float>(ni::LaunchFlashAttentionForward, "forward");
  const std::vector<float> dqkv =
      Backward<float>(ni::LaunchFlashAttentionBackward, f32, "backward");
  for (const ExecutionOrder& order : AllExecutionOrders()) {
    if (order.cp_async_landing != CpAsyncLanding::kAtWait) continue;
    const std::string what = DescribeExecutionOrder(order);
    SetExecutionOrder(order);
    const ForwardResults<float> again = Forward<float>(ni::LaunchFlashAttentionForward, what);
    EXPECT_TRUE(SameBits(again.out, f32.out)) << what << ": out";
    EXPECT_TRUE(SameBits(again.lse, f32.lse)) << what << ": lse";
    EXPECT_TRUE(SameBits(Backward<float>(ni::LaunchFlashAttentionBackward, f32, what), dqkv))
        << what << ": dqkv";
  }
  SetExecutionOrder({});
}

TEST_P(F32FlashAttentionEmulation, WritesEveryOutput) {
  const ForwardResults<float> f32 = Forward<float>(ni::LaunchFlashAttentionForward, "forward");
  EXPECT_TRUE(AllWrittenAndFinite(f32.out)) << "out";
  EXPECT_TRUE(AllWrittenAndFinite(f32.lse)) << "lse";
  EXPECT_TRUE(
      AllWrittenAndFinite(Backward<float>(ni::LaunchFlashAttentionBackward, f32, "backward")))
      << "dqkv";
}

INSTANTIATE_TEST_SUITE_P(Shapes, F32FlashAttentionEmulation, ::testing::ValuesIn(kShapes),
                         ShapeName);

// --- What the launchers refuse, and shapes with nothing to do: no kernel runs.
class FlashAttentionEmulationContract : public ::testing::Test {
 protected:
  static ni::FlashShape Shape(int64_t batch, int64_t seq, int64_t heads, int64_t head_dim) {
    return {batch, seq, heads, head_dim};
  }
  int64_t LaunchesSoFar() const { return TotalStatistics().launches - launches_; }

  DeviceArray<float> f32_{4096, "f32 array"}, lse_{64, "lse"}, scratch_{64, "scratch"};
  DeviceArray<BFloat16> bf16_{4096, "bf16 array"};
  const int64_t launches_ = TotalStatistics().launches;
};

TEST_F(FlashAttentionEmulationContract, Bf16KernelsRefuseHeadSizesNotMultiplesOf16) {
  for (int64_t d : {8, 24, 40, 144}) {
    const ni::FlashShape s = Shape(1, 4, 1, d);
    EXPECT_FALSE(ni::Bf16FlashAttentionTakes(s, f32_.data(), f32_.data(), f32_.data())) << d;
    EXPECT_FALSE(ni::Bf16FlashAttentionTakes(s, bf16_.data(), bf16_.data(), bf16_.data())) << d;
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionForward(f32_.data(), s, f32_.data(), lse_.data(), nullptr),
        cudaErrorInvalidValue)
        << d;
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionForward(bf16_.data(), s, bf16_.data(), lse_.data(), nullptr),
        cudaErrorInvalidValue)
        << d;
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionBackward(f32_.data(), f32_.data(), f32_.data(), lse_.data(), s,
                                             f32_.data(), scratch_.data(), nullptr),
        cudaErrorInvalidValue)
        << d;
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionBackward(bf16_.data(), bf16_.data(), bf16_.data(), lse_.data(),
                                             s, bf16_.data(), scratch_.data(), nullptr),
        cudaErrorInvalidValue)
        << d;
  }
  EXPECT_EQ(LaunchesSoFar(), 0);
}

TEST_F(FlashAttentionEmulationContract, Bf16KernelsRefuseQkvNotAlignedTo16Bytes) {
  const ni::FlashShape s = Shape(1, 4, 1, 16);
  EXPECT_FALSE(ni::Bf16FlashAttentionTakes(s, f32_.data() + 1, f32_.data(), f32_.data()));
  EXPECT_FALSE(ni::Bf16FlashAttentionTakes(s, bf16_.data() + 1, bf16_.data(), bf16_.data()));
  EXPECT_FALSE(ni::Bf16FlashAttentionTakes(s, f32_.data(), f32_.data() + 2, f32_.data()));
  EXPECT_EQ(ni::LaunchBf16FlashAttentionForward(f32_.data() + 1, s, f32_.data() + 512, lse_.data(),
                                                nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(LaunchesSoFar(), 0);
}

// The header: out (forward) and dqkv (backward) aligned to 2 of their elements.
TEST_F(FlashAttentionEmulationContract, Bf16KernelsRefuseResultsNotAlignedToAPair) {
  const ni::FlashShape s = Shape(1, 4, 1, 16);
  EXPECT_EQ(
      ni::LaunchBf16FlashAttentionForward(f32_.data(), s, f32_.data() + 513, lse_.data(), nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(ni::LaunchBf16FlashAttentionForward(bf16_.data(), s, bf16_.data() + 513, lse_.data(),
                                                nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(ni::LaunchBf16FlashAttentionBackward(f32_.data(), f32_.data() + 256, f32_.data() + 256,
                                                 lse_.data(), s, f32_.data() + 513, scratch_.data(),
                                                 nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(ni::LaunchBf16FlashAttentionBackward(bf16_.data(), bf16_.data() + 256,
                                                 bf16_.data() + 256, lse_.data(), s,
                                                 bf16_.data() + 513, scratch_.data(), nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(LaunchesSoFar(), 0);
}

TEST_F(FlashAttentionEmulationContract, F32KernelsRefuseHeadSizesOutOfRange) {
  for (int64_t d : {0, 129}) {
    const ni::FlashShape s = Shape(1, 4, 1, d);
    EXPECT_EQ(ni::LaunchFlashAttentionForward(f32_.data(), s, f32_.data(), lse_.data(), nullptr),
              cudaErrorInvalidValue)
        << d;
    EXPECT_EQ(ni::LaunchFlashAttentionBackward(f32_.data(), f32_.data(), f32_.data(), lse_.data(),
                                               s, f32_.data(), scratch_.data(), nullptr),
              cudaErrorInvalidValue)
        << d;
  }
  EXPECT_EQ(LaunchesSoFar(), 0);
}

TEST_F(FlashAttentionEmulationContract, EmptyShapesSucceedWithoutLaunching) {
  for (const ni::FlashShape& s : {Shape(0, 5, 2, 32), Shape(2, 0, 2, 32)}) {
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionForward(f32_.data(), s, f32_.data(), lse_.data(), nullptr),
        cudaSuccess);
    EXPECT_EQ(
        ni::LaunchBf16FlashAttentionBackward(bf16_.data(), bf16_.data(), bf16_.data(), lse_.data(),
                                             s, bf16_.data(), scratch_.data(), nullptr),
        cudaSuccess);
    EXPECT_EQ(ni::LaunchFlashAttentionForward(f32_.data(), s, f32_.data(), lse_.data(), nullptr),
              cudaSuccess);
    EXPECT_EQ(ni::LaunchFlashAttentionBackward(f32_.data(), f32_.data(), f32_.data(), lse_.data(),
                                               s, f32_.data(), scratch_.data(), nullptr),
              cudaSuccess);
  }
  EXPECT_EQ(LaunchesSoFar(), 0);
  EXPECT_EQ(ErrorCount(), 0);
}

}  // namespace
}  // namespace usine
