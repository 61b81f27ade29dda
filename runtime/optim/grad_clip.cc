#include "runtime/optim/grad_clip.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/reduce.h"

namespace usine {

absl::StatusOr<std::vector<float>> GradientNormsToHost(
    absl::Span<const NamedParameter> parameters) {
  std::vector<float> norms(parameters.size());
  const std::optional<std::vector<Tensor>> grads = GradientsOfOneKind(parameters);
  if (!grads.has_value()) {
    for (size_t i = 0; i < parameters.size(); ++i) {
      absl::StatusOr<float> norm = L2NormToHost(parameters[i].parameter->grad);
      if (!norm.ok()) return WithContext(norm.status(), parameters[i].name);
      norms[i] = *norm;
    }
    return norms;
  }
  if (grads->empty()) return norms;
  const Device device = grads->front().device();
  const int64_t n = static_cast<int64_t>(grads->size());
  ASSIGN_OR_RETURN(Tensor on_device, Tensor::Empty({n}, DType::kF32, device));
  RETURN_IF_ERROR(
      WithContext(L2Norms(*grads, on_device, Stream::Default(device)), "gradient norms"));
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty({n}, DType::kF32));
  RETURN_IF_ERROR(Copy(on_device, host));  // Synchronous: after the norms above.
  const float* values = static_cast<const float*>(host.raw_data());
  std::copy(values, values + n, norms.begin());
  return norms;
}

absl::Status ScaleGradients(absl::Span<const NamedParameter> parameters, float factor) {
  const std::optional<std::vector<Tensor>> grads = GradientsOfOneKind(parameters);
  if (grads.has_value()) {
    if (grads->empty()) return absl::OkStatus();
    return WithContext(Scale(*grads, factor, Stream::Default(grads->front().device())),
                       "gradient scaling");
  }
  for (const NamedParameter& p : parameters) {
    const Tensor& grad = p.parameter->grad;
    RETURN_IF_ERROR(WithContext(Scale(grad, factor, Stream::Default(grad.device())), p.name));
  }
  return absl::OkStatus();
}

float ClipFactor(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / norm) : 1.0f;
}

absl::StatusOr<double> ClipGradientNorm(absl::Span<const NamedParameter> parameters,
                                        double max_norm) {
  if (!parameters.empty()) MarkOp("clip", parameters.front().parameter->grad.device());
  ASSIGN_OR_RETURN(const std::vector<float> norms, GradientNormsToHost(parameters));
  double sum_of_squares = 0;
  for (const float norm : norms) sum_of_squares += static_cast<double>(norm) * norm;
  const double norm = std::sqrt(sum_of_squares);
  const float factor = ClipFactor(norm, max_norm);
  if (factor != 1.0f) RETURN_IF_ERROR(ScaleGradients(parameters, factor));
  return norm;
}

}  // namespace usine
