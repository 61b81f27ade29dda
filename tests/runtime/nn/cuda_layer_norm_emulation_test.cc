// The LayerNorm kernels (cuda_layer_norm.h) on the CPU, under the CUDA emulator
// (tests/testing/cuda_emulator/README.md), through their launchers, on rows narrow and wide (the
// backward pass keeps a row's sums in shared memory up to a width, then re-reads the row) and on
// more rows than one chunk of the weight gradients' column sums. Checked: y, mean, rstd, dx and the
// added weight and bias gradients against double precision; the bf16 y is the f32 y rounded; the
// skip connection's gradient added in place; the same bits under every thread schedule; and no
// error of the emulator's.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/nn/internal/cuda_layer_norm.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/emulated_kernel_test.h"

namespace usine {
namespace {

namespace ni = nn_internal::cuda;
using testing::cuda_emulator::CpAsync;
using testing::cuda_emulator::DeviceArray;
using testing::cuda_emulator::EmulatedKernelTest;
using testing::cuda_emulator::ExecutionOrder;
using testing::cuda_emulator::ExpectTheSameUnderEveryOrder;
using testing::cuda_emulator::SetExecutionOrder;

struct Rows {
  int64_t rows, cols;
};
// GPT-2's width; a row too wide for the shared sums; many rows; one element; an odd width.
const Rows kRows[] = {{37, 768}, {3, 7000}, {300, 64}, {1, 1}, {5, 33}};

std::string RowsName(const ::testing::TestParamInfo<Rows>& info) {
  return "R" + std::to_string(info.param.rows) + "_C" + std::to_string(info.param.cols);
}

constexpr float kEps = 1e-5f;
// f32 sums of up to 7,000 terms of order 1, and of up to 300 rows for the parameters' gradients.
constexpr double kTolerance = 1e-5;

// Inputs whose rows have a mean of about 3 (not 0, so that a variance that forgot to subtract it
// would show) and their double-precision LayerNorm, forward and backward.
class LayerNormProblem {
 public:
  explicit LayerNormProblem(const Rows& s)
      : s_(s),
        x_(s.rows * s.cols, "x"),
        dy_(s.rows * s.cols, "dy"),
        weight_(s.cols, "weight"),
        bias_(s.cols, "bias"),
        y_(s.rows * s.cols),
        dx_(s.rows * s.cols),
        mean_(s.rows),
        rstd_(s.rows),
        dweight_(s.cols, 0.0),
        dbias_(s.cols, 0.0) {
    std::mt19937 rng(static_cast<uint32_t>(s.rows * 31 + s.cols));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < s.rows * s.cols; ++i) {
      x_[i] = 3.0f + 2.0f * normal(rng);
      dy_[i] = normal(rng);
    }
    for (int64_t c = 0; c < s.cols; ++c) {
      weight_[c] = 1.0f + 0.3f * normal(rng);
      bias_[c] = 0.1f * normal(rng);
    }
    const int64_t n = s.cols;
    for (int64_t r = 0; r < s.rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t c = 0; c < n; ++c) mean += x_[r * n + c];
      mean /= n;
      for (int64_t c = 0; c < n; ++c) var += (x_[r * n + c] - mean) * (x_[r * n + c] - mean);
      const double rstd = 1 / std::sqrt(var / n + kEps);
      mean_[r] = mean;
      rstd_[r] = rstd;
      double g_mean = 0, g_xhat_mean = 0;
      for (int64_t c = 0; c < n; ++c) {
        const double xhat = (x_[r * n + c] - mean) * rstd;
        const double g = static_cast<double>(dy_[r * n + c]) * weight_[c];
        y_[r * n + c] = xhat * weight_[c] + bias_[c];
        g_mean += g / n;
        g_xhat_mean += g * xhat / n;
        dweight_[c] += dy_[r * n + c] * xhat;
        dbias_[c] += dy_[r * n + c];
      }
      for (int64_t c = 0; c < n; ++c) {
        const double xhat = (x_[r * n + c] - mean) * rstd;
        const double g = static_cast<double>(dy_[r * n + c]) * weight_[c];
        dx_[r * n + c] = rstd * (g - g_mean - xhat * g_xhat_mean);
      }
    }
  }

  const Rows& shape() const { return s_; }
  const float* x() const { return x_.data(); }
  const float* dy() const { return dy_.data(); }
  const float* weight() const { return weight_.data(); }
  const float* bias() const { return bias_.data(); }
  double y(int64_t i) const { return y_[i]; }
  double dx(int64_t i) const { return dx_[i]; }
  double mean(int64_t r) const { return mean_[r]; }
  double rstd(int64_t r) const { return rstd_[r]; }
  double dweight(int64_t c) const { return dweight_[c]; }
  double dbias(int64_t c) const { return dbias_[c]; }

 private:
  Rows s_;
  DeviceArray<float> x_, dy_, weight_, bias_;
  std::vector<double> y_, dx_, mean_, rstd_, dweight_, dbias_;
};

class LayerNormEmulation : public EmulatedKernelTest<::testing::TestWithParam<Rows>> {};

TEST_P(LayerNormEmulation, ForwardMatchesDoublePrecisionAndItsBf16OutputIsTheF32Rounded) {
  const LayerNormProblem p(GetParam());
  const auto [rows, cols] = GetParam();
  DeviceArray<float> y(rows * cols, "y"), mean(rows, "mean"), rstd(rows, "rstd");
  DeviceArray<BFloat16> y_bf16(rows * cols, "y bf16");
  ASSERT_EQ(ni::LaunchLayerNormForward(p.x(), p.weight(), p.bias(), rows, cols, kEps, y.data(),
                                       mean.data(), rstd.data(), nullptr),
            cudaSuccess);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_NEAR(mean[r], p.mean(r), kTolerance) << "row " << r;
    EXPECT_NEAR(rstd[r] / p.rstd(r), 1.0, kTolerance) << "row " << r;
  }
  for (int64_t i = 0; i < rows * cols; ++i) {
    ASSERT_NEAR(y[i], p.y(i), kTolerance) << "element " << i;
  }
  ASSERT_EQ(ni::LaunchLayerNormForward(p.x(), p.weight(), p.bias(), rows, cols, kEps, y_bf16.data(),
                                       mean.data(), rstd.data(), nullptr),
            cudaSuccess);
  for (int64_t i = 0; i < rows * cols; ++i) {
    ASSERT_EQ(y_bf16[i].bits, BFloat16::FromFloat(y[i]).bits) << "element " << i;
  }
}

// dx (plus skip, in place, when given) and the parameters' gradients added to 0.5 and -0.25.
struct Gradients {
  std::vector<float> dx, dweight, dbias;
};
Gradients Backward(const LayerNormProblem& p, const std::vector<float>* skip) {
  const auto [rows, cols] = p.shape();
  DeviceArray<float> y(rows * cols, "y"), mean(rows, "mean"), rstd(rows, "rstd");
  DeviceArray<float> dx(rows * cols, "dx"), dweight(cols, "dweight"), dbias(cols, "dbias");
  DeviceArray<float> scratch(ni::LayerNormBackwardScratch(rows, cols), "scratch");
  EXPECT_EQ(ni::LaunchLayerNormForward(p.x(), p.weight(), p.bias(), rows, cols, kEps, y.data(),
                                       mean.data(), rstd.data(), nullptr),
            cudaSuccess);
  std::fill_n(dweight.data(), cols, 0.5f);
  std::fill_n(dbias.data(), cols, -0.25f);
  if (skip != nullptr) std::copy(skip->begin(), skip->end(), dx.data());
  EXPECT_EQ(
      ni::LaunchLayerNormBackward(p.dy(), p.x(), p.weight(), mean.data(), rstd.data(),
                                  skip != nullptr ? dx.data() : nullptr, rows, cols, dx.data(),
                                  dweight.data(), dbias.data(), scratch.data(), nullptr),
      cudaSuccess);
  return {dx.ToVector(), dweight.ToVector(), dbias.ToVector()};
}

TEST_P(LayerNormEmulation, BackwardMatchesDoublePrecisionAndAddsTheSkipInPlace) {
  const LayerNormProblem p(GetParam());
  const auto [rows, cols] = GetParam();
  const Gradients g = Backward(p, nullptr);
  for (int64_t i = 0; i < rows * cols; ++i) {
    ASSERT_NEAR(g.dx[i], p.dx(i), kTolerance) << "element " << i;
  }
  for (int64_t c = 0; c < cols; ++c) {
    EXPECT_NEAR(g.dweight[c], 0.5 + p.dweight(c),
                kTolerance * std::max(1.0, std::fabs(p.dweight(c))))
        << "column " << c;
    EXPECT_NEAR(g.dbias[c], -0.25 + p.dbias(c), kTolerance * std::max(1.0, std::fabs(p.dbias(c))))
        << "column " << c;
  }
  std::vector<float> skip(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) skip[i] = static_cast<float>(i % 7) - 3.0f;
  const Gradients with_skip = Backward(p, &skip);
  for (int64_t i = 0; i < rows * cols; ++i) {
    // The skip is added last, to the rounded dx.
    ASSERT_EQ(with_skip.dx[i], g.dx[i] + skip[i]) << "element " << i;
  }
}

TEST_P(LayerNormEmulation, BackwardRepeatsBitForBitUnderEverySchedule) {
  const LayerNormProblem p(GetParam());
  auto run = [&](const ExecutionOrder& order) {
    SetExecutionOrder(order);
    const Gradients g = Backward(p, nullptr);
    std::vector<uint32_t> bits;
    for (const auto* v : {&g.dx, &g.dweight, &g.dbias}) {
      for (float x : *v) bits.push_back(std::bit_cast<uint32_t>(x));
    }
    return bits;
  };
  ExpectTheSameUnderEveryOrder(run, CpAsync::kNotUsed);
}

INSTANTIATE_TEST_SUITE_P(Rows, LayerNormEmulation, ::testing::ValuesIn(kRows), RowsName);

}  // namespace
}  // namespace usine
