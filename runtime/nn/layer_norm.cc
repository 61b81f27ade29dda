#include "runtime/nn/layer_norm.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/cpu_layer_norm.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<LayerNorm>> LayerNorm::Create(const LayerNormOptions& options) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "LayerNorm"));
  if (options.dim < 1 || !(options.eps > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LayerNorm: dim must be positive and eps > 0, got ", options.dim, ", ", options.eps));
  }
  auto ln = std::unique_ptr<LayerNorm>(new LayerNorm(options));
  ASSIGN_OR_RETURN(ln->weight_,
                   ln->AddParameter("weight", {options.dim}, options.dtype, options.device,
                                    /*decay=*/false, options.gradients));
  ASSIGN_OR_RETURN(ln->bias_, ln->AddParameter("bias", {options.dim}, options.dtype, options.device,
                                               /*decay=*/false, options.gradients));
  RETURN_IF_ERROR(Fill(ln->weight_->value, 1.0));
  RETURN_IF_ERROR(Fill(ln->bias_->value, 0.0));
  return ln;
}

absl::StatusOr<Tensor> LayerNorm::Forward(const Tensor& x) { return ForwardTo(x, options_.dtype); }

absl::StatusOr<Tensor> LayerNorm::ForwardOperand(const Tensor& x) {
  return ForwardTo(x, ProductOperandDType(options_.dtype, options_.device));
}

absl::StatusOr<Tensor> LayerNorm::ForwardTo(const Tensor& x, DType y_dtype) {
  const Device device = options_.device;
  RETURN_IF_ERROR(ni::CheckLayerInput(x, options_.dtype, device, options_.dim, "LayerNorm input"));
  const int64_t rows = x.numel() / options_.dim;
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(x.shape(), y_dtype, device));
  ASSIGN_OR_RETURN(Tensor mean, Tensor::Empty({rows}, x.dtype(), device));
  ASSIGN_OR_RETURN(Tensor rstd, Tensor::Empty({rows}, x.dtype(), device));
  if (device.is_cuda()) {
    RETURN_IF_ERROR(ni::CudaLayerNormForward(x, weight_->value, bias_->value, options_.dim,
                                             options_.eps, y, mean, rstd));
    saved_ = Saved{x, mean, rstd};
    return y;
  }
  ni::VisitReal(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::LayerNormForward(ni::Elements<T>(x), ni::Elements<T>(weight_->value),
                         ni::Elements<T>(bias_->value), rows, options_.dim, options_.eps,
                         ni::Elements<T>(y), ni::Elements<T>(mean), ni::Elements<T>(rstd));
  });
  saved_ = Saved{x, mean, rstd};
  return y;
}

absl::StatusOr<Tensor> LayerNorm::Backward(const Tensor& dy) { return BackwardTo(dy, Tensor()); }

absl::StatusOr<Tensor> LayerNorm::BackwardWithSkip(const Tensor& dy, const Tensor& skip) {
  RETURN_IF_ERROR(CheckDefined(skip, "LayerNorm skip"));
  return BackwardTo(dy, skip);
}

absl::StatusOr<Tensor> LayerNorm::BackwardTo(const Tensor& dy, const Tensor& skip) {
  if (!saved_) return absl::FailedPreconditionError("LayerNorm::Backward before Forward");
  const Device device = options_.device;
  RETURN_IF_ERROR(ni::CheckLayerInput(dy, options_.dtype, device, options_.dim, "LayerNorm dy"));
  RETURN_IF_ERROR(CheckSameShape(dy, saved_->x, "LayerNorm dy", "input"));
  if (skip.defined()) {
    RETURN_IF_ERROR(
        ni::CheckLayerInput(skip, options_.dtype, device, options_.dim, "LayerNorm skip"));
    RETURN_IF_ERROR(CheckSameShape(skip, saved_->x, "LayerNorm skip", "input"));
  }
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(saved_->x.shape(), dy.dtype(), device));
  if (device.is_cuda()) {
    RETURN_IF_ERROR(ni::CudaLayerNormBackward(dy, saved_->x, weight_->value, saved_->mean,
                                              saved_->rstd, options_.dim, skip, dx, weight_->grad,
                                              bias_->grad));
    return dx;
  }
  ni::VisitReal(dy.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::LayerNormBackward(ni::Elements<T>(dy), ni::Elements<T>(saved_->x),
                          ni::Elements<T>(weight_->value), ni::Elements<T>(saved_->mean),
                          ni::Elements<T>(saved_->rstd), saved_->mean.numel(), options_.dim,
                          ni::Elements<T>(dx), ni::Elements<T>(weight_->grad),
                          ni::Elements<T>(bias_->grad));
    if (skip.defined()) {
      ni::AddArrays(ni::Elements<T>(skip), ni::Elements<T>(dx), dx.numel(), ni::Elements<T>(dx));
    }
  });
  return dx;
}

}  // namespace usine
