#include "runtime/nn/linear.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<Linear>> Linear::Create(const LinearOptions& options,
                                                       ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "Linear"));
  if (options.in_features < 1 || options.out_features < 1) {
    return absl::InvalidArgumentError(absl::StrCat("Linear: features must be positive, got in ",
                                                   options.in_features, ", out ",
                                                   options.out_features));
  }
  auto linear = std::unique_ptr<Linear>(new Linear(options));
  ASSIGN_OR_RETURN(
      linear->weight_,
      linear->AddParameter("weight", {options.out_features, options.in_features}, options.dtype,
                           options.device, /*decay=*/true, init.gradients()));
  RETURN_IF_ERROR(init.Normal(linear->weight_->value, options.init_stddev));
  if (options.bias) {
    ASSIGN_OR_RETURN(linear->bias_, linear->AddParameter("bias", {options.out_features},
                                                         options.dtype, options.device,
                                                         /*decay=*/false, init.gradients()));
    RETURN_IF_ERROR(Fill(linear->bias_->value, 0.0));
  }
  return linear;
}

absl::StatusOr<Tensor> Linear::Forward(const Tensor& x) {
  return product_.Forward(x, weight_->value, bias_ != nullptr ? &bias_->value : nullptr);
}

absl::StatusOr<Tensor> Linear::ForwardAdding(const Tensor& x, const Tensor& residual) {
  if (options_.activation != LinearActivation::kNone || options_.output_operand) {
    return Sublayer::ForwardAdding(x, residual);
  }
  return product_.Forward(x, weight_->value, bias_ != nullptr ? &bias_->value : nullptr, &residual);
}

absl::StatusOr<Tensor> Linear::Backward(const Tensor& dy) {
  return product_.Backward(dy, weight_->grad, bias_grad());
}

absl::StatusOr<Tensor> Linear::Preactivation() const { return product_.Preactivation(); }

absl::StatusOr<Tensor> Linear::BackwardThroughGelu(const Tensor& dy, const Tensor& preactivation) {
  return product_.BackwardThroughGelu(dy, preactivation, weight_->grad, bias_grad());
}

absl::StatusOr<Tensor> Linear::BackwardFromPreactivation(const Tensor& dh) {
  return product_.BackwardFromPreactivation(dh, weight_->grad, bias_grad());
}

}  // namespace usine
