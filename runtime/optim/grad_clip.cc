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
namespace {

// The stream the gradients of `device` are scaled on: the host's, or the CUDA device's
// default stream (the one the layers and the optimizer use, nn/internal/real_types.h).
Stream GradientStream(Device device) {
  return device.is_cpu() ? Stream::Host() : Stream::Default(device);
}

// Each gradient's L2 norm (f32, in a fixed order on its device), on the host. With `grads` (all
// on one device): one L2Norms call and one copy to the host, a single synchronisation.
absl::StatusOr<std::vector<float>> GradientNorms(absl::Span<const NamedParameter> parameters,
                                                 const std::optional<std::vector<Tensor>>& grads) {
  std::vector<float> norms(parameters.size());
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
      WithContext(L2Norms(*grads, on_device, GradientStream(device)), "gradient norms"));
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty({n}, DType::kF32));
  RETURN_IF_ERROR(Copy(on_device, host));  // Synchronous: after the norms above.
  const float* values = static_cast<const float*>(host.raw_data());
  std::copy(values, values + n, norms.begin());
  return norms;
}

}  // namespace

absl::StatusOr<double> ClipGradientNorm(absl::Span<const NamedParameter> parameters,
                                        double max_norm) {
  if (!parameters.empty()) MarkOp("clip", parameters.front().parameter->grad.device());
  const std::optional<std::vector<Tensor>> grads = GradientsOnOneDevice(parameters);
  ASSIGN_OR_RETURN(const std::vector<float> norms, GradientNorms(parameters, grads));
  double sum_of_squares = 0;
  for (const float norm : norms) sum_of_squares += static_cast<double>(norm) * norm;
  const double norm = std::sqrt(sum_of_squares);
  if (!(max_norm > 0 && norm > max_norm)) return norm;
  const float factor = static_cast<float>(max_norm / norm);
  if (grads.has_value()) {
    if (!grads->empty()) {
      RETURN_IF_ERROR(WithContext(Scale(*grads, factor, GradientStream(grads->front().device())),
                                  "gradient scaling"));
    }
    return norm;
  }
  for (const NamedParameter& p : parameters) {
    const Tensor& grad = p.parameter->grad;
    RETURN_IF_ERROR(WithContext(Scale(grad, factor, GradientStream(grad.device())), p.name));
  }
  return norm;
}

}  // namespace usine
