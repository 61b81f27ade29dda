#include "runtime/optim/internal/adamw_update.h"

#include <cmath>

#include "runtime/core/parallel_for.h"

namespace usine::optim_internal {

AdamWCoefficients AdamWCoefficientsAt(const AdamWOptions& options, double lr, int64_t t,
                                      float grad_scale) {
  return AdamWCoefficients{
      .lr = lr,
      .beta1 = options.beta1,
      .beta2 = options.beta2,
      .eps = options.eps,
      .weight_decay = options.weight_decay,
      .correction1 = 1.0 - std::pow(options.beta1, static_cast<double>(t)),
      .correction2 = 1.0 - std::pow(options.beta2, static_cast<double>(t)),
      .grad_scale = grad_scale,
  };
}

void AdamWUpdate(const AdamWCoefficients& c, bool decay, int64_t n, float* value, const float* grad,
                 float* exp_avg, float* exp_avg_sq) {
  const double b1 = c.beta1, b2 = c.beta2;
  const double shrink = decay ? c.lr * c.weight_decay : 0.0;
  const float scale = c.grad_scale;
  ParallelFor(n, /*grain=*/1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double g = scale * grad[i];  // In f32, as Scale (kernels/elementwise.h) rounds it.
      const double m = b1 * exp_avg[i] + (1 - b1) * g;
      const double v = b2 * exp_avg_sq[i] + (1 - b2) * g * g;
      const double x = value[i] - shrink * value[i];
      value[i] = static_cast<float>(x - c.lr * (m / c.correction1) /
                                            (std::sqrt(v / c.correction2) + c.eps));
      exp_avg[i] = static_cast<float>(m);
      exp_avg_sq[i] = static_cast<float>(v);
    }
  });
}

}  // namespace usine::optim_internal
