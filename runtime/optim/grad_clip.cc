#include "runtime/optim/grad_clip.h"

#include <cmath>

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/reduce.h"

namespace usine {

absl::StatusOr<double> ClipGradientNorm(absl::Span<const NamedParameter> parameters,
                                        double max_norm) {
  double sum_of_squares = 0;
  for (const NamedParameter& p : parameters) {
    absl::StatusOr<float> norm = L2NormToHost(p.parameter->grad);
    if (!norm.ok()) return WithContext(norm.status(), p.name);
    sum_of_squares += static_cast<double>(*norm) * *norm;
  }
  const double norm = std::sqrt(sum_of_squares);
  if (max_norm > 0 && norm > max_norm) {
    const float factor = static_cast<float>(max_norm / norm);
    for (const NamedParameter& p : parameters) {
      RETURN_IF_ERROR(WithContext(Scale(p.parameter->grad, factor), p.name));
    }
  }
  return norm;
}

}  // namespace usine
