#include "runtime/nn/linear.h"

#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/cuda_layers.h"
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
  RETURN_IF_ERROR(ni::CheckProductInput(x, options_.dtype, options_.device, options_.in_features,
                                        "Linear input"));
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = options_.out_features;
  ASSIGN_OR_RETURN(
      Tensor y, Tensor::Empty(Shape(absl::MakeConstSpan(dims)), options_.dtype, options_.device));
  const Stream stream = ni::LayerStream(options_.device);
  ASSIGN_OR_RETURN(Tensor x_operand, ProductOperand(x, stream));
  ASSIGN_OR_RETURN(Tensor w_operand, ProductOperand(weight_->value, stream));
  RETURN_IF_ERROR(Matmul(x_operand, w_operand, y,
                         {.transpose_b = true, .bias = bias_ ? &bias_->value : nullptr}, stream));
  x_ = std::move(x_operand);
  w_ = std::move(w_operand);
  return y;
}

absl::StatusOr<Tensor> Linear::Backward(const Tensor& dy) {
  if (!x_) return absl::FailedPreconditionError("Linear::Backward before Forward");
  RETURN_IF_ERROR(
      ni::CheckLayerInput(dy, options_.dtype, options_.device, options_.out_features, "Linear dy"));
  const int64_t rows = x_->numel() / options_.in_features;
  if (dy.numel() != rows * options_.out_features) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Linear dy: ", dy.DebugString(), " does not match the input ", x_->DebugString()));
  }
  ASSIGN_OR_RETURN(Tensor dy2, dy.Reshape({rows, options_.out_features}));
  ASSIGN_OR_RETURN(Tensor x2, x_->Reshape({rows, options_.in_features}));
  const Stream stream = ni::LayerStream(options_.device);
  // dy as the products read it, and the bias gradient (its column sums). On CUDA under bf16
  // products both come from one pass over dy; the bits are those of the cast and the sums apart.
  Tensor dy_operand;
  if (bias_ != nullptr && options_.device.is_cuda() &&
      ProductOperandDType(dy.dtype(), dy.device()) == DType::kBF16) {
    ASSIGN_OR_RETURN(Tensor rounded,
                     ni::CudaRoundAndAccumulateColumnSums(dy2, options_.out_features, bias_->grad));
    ASSIGN_OR_RETURN(dy_operand, rounded.Reshape(dy.shape()));
  } else {
    ASSIGN_OR_RETURN(dy_operand, ProductOperand(dy, stream));
    if (bias_ != nullptr && options_.device.is_cuda()) {
      RETURN_IF_ERROR(ni::CudaAccumulateColumnSums(dy2, options_.out_features, bias_->grad));
    } else if (bias_ != nullptr) {
      ni::VisitReal(dy.dtype(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        ni::AccumulateColumnSums(ni::Elements<T>(dy2), rows, options_.out_features,
                                 ni::Elements<T>(bias_->grad));
      });
    }
  }
  ASSIGN_OR_RETURN(Tensor dy2_operand, dy_operand.Reshape({rows, options_.out_features}));
  RETURN_IF_ERROR(
      Matmul(dy2_operand, x2, weight_->grad, {.transpose_a = true, .beta = 1.0f}, stream));
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), options_.dtype, options_.device));
  RETURN_IF_ERROR(Matmul(dy_operand, *w_, dx, {}, stream));
  return dx;
}

}  // namespace usine
