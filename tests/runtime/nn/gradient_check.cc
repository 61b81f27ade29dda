#include "tests/runtime/nn/gradient_check.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"

#include "runtime/kernels/random.h"

namespace usine::testing {

Tensor RandomF64(const Shape& shape, uint64_t seed, double scale) {
  Tensor draws = Tensor::Empty(shape, DType::kF32).value();
  EXPECT_TRUE(RandomUniform(draws, seed, 0, -1.0f, 1.0f).ok());
  Tensor t = Tensor::Empty(shape, DType::kF64).value();
  const float* in = static_cast<const float*>(draws.raw_data());
  double* out = static_cast<double*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = scale * in[i];
  return t;
}

void RandomizeParameters(Module& module, uint64_t seed) {
  for (const NamedParameter& p : module.Parameters()) {
    Tensor r = RandomF64(p.parameter->value.shape(), seed++, 0.5);
    const bool around_one = p.name.find("ln") != std::string::npos && p.name.size() > 6 &&
                            p.name.substr(p.name.size() - 6) == "weight";
    double* out = static_cast<double*>(p.parameter->value.raw_data());
    const double* in = static_cast<const double*>(r.raw_data());
    for (int64_t i = 0; i < r.numel(); ++i) out[i] = in[i] + (around_one ? 1.0 : 0.0);
  }
}

double Dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  const double* pa = static_cast<const double*>(a.raw_data());
  const double* pb = static_cast<const double*>(b.raw_data());
  double sum = 0;
  for (int64_t i = 0; i < a.numel(); ++i) sum += pa[i] * pb[i];
  return sum;
}

void ExpectGradientMatches(const Tensor& variable, const Tensor& analytic,
                           const std::function<double()>& objective, const std::string& what,
                           int64_t max_checks) {
  ASSERT_EQ(variable.dtype(), DType::kF64) << what;
  ASSERT_EQ(variable.shape(), analytic.shape()) << what;
  double* x = static_cast<double*>(variable.raw_data());
  const double* g = static_cast<const double*>(analytic.raw_data());
  const int64_t n = variable.numel();
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  int failures = 0;
  for (int64_t i = 0; i < n; i += stride) {
    const double saved = x[i];
    x[i] = saved + kStep;
    const double plus = objective();
    x[i] = saved - kStep;
    const double minus = objective();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * kStep);
    if (std::abs(g[i] - numeric) > kAbsTolerance + kRelTolerance * std::abs(numeric) &&
        ++failures <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: analytic " << g[i] << ", numeric " << numeric;
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

void ExpectParameterGradientsMatch(Module& module, const std::function<double()>& objective,
                                   int64_t max_checks_each) {
  for (const NamedParameter& p : module.Parameters()) {
    ExpectGradientMatches(p.parameter->value, p.parameter->grad, objective, p.name,
                          max_checks_each);
  }
}

}  // namespace usine::testing
