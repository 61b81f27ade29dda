#include "runtime/nn/internal/linear_product.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"

namespace usine::nn_internal {

absl::StatusOr<Tensor> LinearProduct::Forward(const Tensor& x, const Tensor& weight,
                                              const Tensor* bias) {
  RETURN_IF_ERROR(CheckProductInput(x, dtype_, device_, in_, absl::StrCat(layer_, " input")));
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = out_;
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(Shape(absl::MakeConstSpan(dims)), dtype_, device_));
  const Stream stream = LayerStream(device_);
  ASSIGN_OR_RETURN(Tensor x_operand, ProductOperand(x, stream));
  ASSIGN_OR_RETURN(Tensor w_operand, ProductOperand(weight, stream));
  RETURN_IF_ERROR(Matmul(x_operand, w_operand, y, {.transpose_b = true, .bias = bias}, stream));
  x_ = std::move(x_operand);
  w_ = std::move(w_operand);
  return y;
}

absl::StatusOr<Tensor> LinearProduct::OperandAndBiasGradient(const Tensor& dy, const Tensor& dy2,
                                                             const Tensor* bias_grad) const {
  // On CUDA under bf16 products the rounding and the sums come from one pass over dy; the bits
  // are those of the cast and the sums apart.
  if (bias_grad != nullptr && device_.is_cuda() &&
      ProductOperandDType(dy.dtype(), dy.device()) == DType::kBF16) {
    ASSIGN_OR_RETURN(Tensor rounded, CudaRoundAndAccumulateColumnSums(dy2, out_, *bias_grad));
    return rounded.Reshape(dy.shape());
  }
  if (bias_grad != nullptr && device_.is_cuda()) {
    RETURN_IF_ERROR(CudaAccumulateColumnSums(dy2, out_, *bias_grad));
  } else if (bias_grad != nullptr) {
    VisitReal(dy.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      AccumulateColumnSums(Elements<T>(dy2), dy2.dim(0), out_, Elements<T>(*bias_grad));
    });
  }
  return ProductOperand(dy, LayerStream(device_));
}

absl::StatusOr<Tensor> LinearProduct::Backward(const Tensor& dy, const Tensor& weight_grad,
                                               const Tensor* bias_grad) {
  if (!x_) return absl::FailedPreconditionError(absl::StrCat(layer_, "::Backward before Forward"));
  RETURN_IF_ERROR(CheckLayerInput(dy, dtype_, device_, out_, absl::StrCat(layer_, " dy")));
  const int64_t rows = x_->numel() / in_;
  if (dy.numel() != rows * out_) {
    return absl::InvalidArgumentError(absl::StrCat(
        layer_, " dy: ", dy.DebugString(), " does not match the input ", x_->DebugString()));
  }
  ASSIGN_OR_RETURN(Tensor dy2, dy.Reshape({rows, out_}));
  ASSIGN_OR_RETURN(Tensor x2, x_->Reshape({rows, in_}));
  const Stream stream = LayerStream(device_);
  ASSIGN_OR_RETURN(const Tensor dy_operand, OperandAndBiasGradient(dy, dy2, bias_grad));
  ASSIGN_OR_RETURN(Tensor dy2_operand, dy_operand.Reshape({rows, out_}));
  RETURN_IF_ERROR(
      Matmul(dy2_operand, x2, weight_grad, {.transpose_a = true, .beta = 1.0f}, stream));
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), dtype_, device_));
  RETURN_IF_ERROR(Matmul(dy_operand, *w_, dx, {}, stream));
  return dx;
}

}  // namespace usine::nn_internal
