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

namespace {

// One span of the update. Compiled into each function below for its instruction set, where
// GCC vectorises it over that set's f64 lanes (2, 4 or 8): each element takes the same IEEE
// operations (products and sums never contracted into FMAs, -ffp-contract=off; the division
// and square root exact), so every width gives the same bits.
struct UpdateSpan {
  double b1, b2, lr, shrink, correction1, correction2, eps;
  float scale;
  float* value;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;

  [[gnu::always_inline]] inline void Run(int64_t begin, int64_t end) const {
    // Locals, so that no store through the arrays can be taken to change them.
    const double b1 = this->b1, b2 = this->b2, lr = this->lr, shrink = this->shrink;
    const double correction1 = this->correction1, correction2 = this->correction2, eps = this->eps;
    const float scale = this->scale;
    float* const value = this->value;
    const float* const grad = this->grad;
    float* const exp_avg = this->exp_avg;
    float* const exp_avg_sq = this->exp_avg_sq;
    for (int64_t i = begin; i < end; ++i) {
      const double g = scale * grad[i];  // In f32, as Scale (kernels/elementwise.h) rounds it.
      const double m = b1 * exp_avg[i] + (1 - b1) * g;
      const double v = b2 * exp_avg_sq[i] + (1 - b2) * g * g;
      const double x = value[i] - shrink * value[i];
      value[i] =
          static_cast<float>(x - lr * (m / correction1) / (std::sqrt(v / correction2) + eps));
      exp_avg[i] = static_cast<float>(m);
      exp_avg_sq[i] = static_cast<float>(v);
    }
  }
};

void RunBaseline(const UpdateSpan& span, int64_t begin, int64_t end) { span.Run(begin, end); }
#if defined(__x86_64__)
__attribute__((target("avx2"), flatten)) void RunAvx2(const UpdateSpan& span, int64_t begin,
                                                      int64_t end) {
  span.Run(begin, end);
}
__attribute__((target("avx512f"), flatten)) void RunAvx512(const UpdateSpan& span, int64_t begin,
                                                           int64_t end) {
  span.Run(begin, end);
}
#endif

using RunFn = void (*)(const UpdateSpan&, int64_t, int64_t);

// The widest this cpu runs, chosen once.
RunFn Widest() {
  static const RunFn widest = [] {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return &RunAvx512;
    if (__builtin_cpu_supports("avx2")) return &RunAvx2;
#endif
    return &RunBaseline;
  }();
  return widest;
}

}  // namespace

void AdamWUpdate(const AdamWCoefficients& c, bool decay, int64_t n, float* value, const float* grad,
                 float* exp_avg, float* exp_avg_sq) {
  const UpdateSpan span{.b1 = c.beta1,
                        .b2 = c.beta2,
                        .lr = c.lr,
                        .shrink = decay ? c.lr * c.weight_decay : 0.0,
                        .correction1 = c.correction1,
                        .correction2 = c.correction2,
                        .eps = c.eps,
                        .scale = c.grad_scale,
                        .value = value,
                        .grad = grad,
                        .exp_avg = exp_avg,
                        .exp_avg_sq = exp_avg_sq};
  const RunFn run = Widest();
  ParallelFor(n, /*grain=*/1 << 15, [&](int64_t begin, int64_t end) { run(span, begin, end); });
}

}  // namespace usine::optim_internal
