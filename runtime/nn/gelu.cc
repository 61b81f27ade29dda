#include "runtime/nn/gelu.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/gelu_kernels.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<Tensor> Gelu::Forward(const Tensor& x) {
  RETURN_IF_ERROR(CheckDefined(x, "Gelu input"));
  RETURN_IF_ERROR(ni::CheckLayerPlacement(dtype_, x.device(), "Gelu"));
  RETURN_IF_ERROR(CheckDType(x, dtype_, "Gelu input"));
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(x.shape(), dtype_, x.device()));
  RETURN_IF_ERROR(ni::GeluForwardOn(x, y));
  x_ = x;
  return y;
}

absl::StatusOr<Tensor> Gelu::Backward(const Tensor& dy) {
  if (!x_) return absl::FailedPreconditionError("Gelu::Backward before Forward");
  RETURN_IF_ERROR(CheckSameShape(dy, *x_, "Gelu dy", "input"));
  RETURN_IF_ERROR(CheckSameDType(dy, *x_, "Gelu dy", "input"));
  RETURN_IF_ERROR(CheckSameDevice(dy, *x_, "Gelu dy", "input"));
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), x_->dtype(), x_->device()));
  RETURN_IF_ERROR(ni::GeluBackwardOn(*x_, dy, dx));
  return dx;
}

}  // namespace usine
