#include "runtime/nn/internal/linear_product.h"

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/gelu_kernels.h"
#include "runtime/nn/internal/real_types.h"

namespace usine::nn_internal {

absl::StatusOr<Tensor> LinearProduct::Forward(const Tensor& x, const Tensor& weight,
                                              const Tensor* bias, const Tensor* residual) {
  RETURN_IF_ERROR(CheckProductInput(x, dtype_, device_, in_, absl::StrCat(layer_, " input")));
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = out_;
  const bool gelu = activation_ == LinearActivation::kGelu;
  const DType y_dtype = gelu || output_operand_ ? ProductOperandDType(dtype_, device_) : dtype_;
  const Shape y_shape(absl::MakeConstSpan(dims));
  if (residual != nullptr) RETURN_IF_ERROR(CheckResidual(*residual, y_shape));
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(y_shape, y_dtype, device_));
  const Stream stream = LayerStream(device_);
  ASSIGN_OR_RETURN(Tensor x_operand, ProductOperand(x, stream));
  ASSIGN_OR_RETURN(Tensor w_operand, ProductOperand(weight, stream));
  if (gelu) {
    RETURN_IF_ERROR(ForwardGelu(x_operand, w_operand, bias, y));
  } else {
    ASSIGN_OR_RETURN(const std::optional<Tensor> y_bias, BiasOf(bias, y));
    RETURN_IF_ERROR(Matmul(x_operand, w_operand, y,
                           {.transpose_b = true,
                            .beta = residual != nullptr ? 1.0f : 0.0f,
                            .bias = y_bias ? &*y_bias : nullptr,
                            .addend = residual},
                           stream));
  }
  x_ = std::move(x_operand);
  w_ = std::move(w_operand);
  return y;
}

absl::Status LinearProduct::CheckResidual(const Tensor& residual, const Shape& y_shape) const {
  const std::string what = absl::StrCat(layer_, " residual");
  if (activation_ != LinearActivation::kNone || output_operand_) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a residual is added to an output in the layer's dtype only, with no activation"));
  }
  RETURN_IF_ERROR(CheckDefined(residual, what));
  if (residual.device() != device_ || residual.dtype() != dtype_) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected ", DTypeName(dtype_), " on ",
                                                   device_.ToString(), ", got ",
                                                   residual.DebugString()));
  }
  return CheckShape(residual, y_shape, what);
}

absl::StatusOr<std::optional<Tensor>> LinearProduct::BiasOf(const Tensor* bias,
                                                            const Tensor& y) const {
  if (bias == nullptr) return std::nullopt;
  if (y.dtype() != DType::kBF16) return *bias;
  return ProductOperand(*bias, LayerStream(device_));
}

absl::StatusOr<Tensor> LinearProduct::GeluEpilogueProduct(const Tensor& x_operand,
                                                          const Tensor& w_operand,
                                                          const Tensor* bias,
                                                          const Tensor& y) const {
  const Stream stream = LayerStream(device_);
  ASSIGN_OR_RETURN(Tensor gelu_input,
                   Tensor::Empty(y.shape(), DType::kBF16, device_, stream.handle()));
  ASSIGN_OR_RETURN(const std::optional<Tensor> y_bias, BiasOf(bias, y));
  RETURN_IF_ERROR(Matmul(x_operand, w_operand, y,
                         {.transpose_b = true,
                          .bias = y_bias ? &*y_bias : nullptr,
                          .epilogue = MatmulEpilogue::kGelu,
                          .gelu_input = &gelu_input},
                         stream));
  return gelu_input;
}

absl::Status LinearProduct::ForwardGelu(const Tensor& x_operand, const Tensor& w_operand,
                                        const Tensor* bias, const Tensor& y) {
  if (y.dtype() == DType::kBF16) {  // CUDA under bf16 products
    absl::StatusOr<Tensor> gelu_input = GeluEpilogueProduct(x_operand, w_operand, bias, y);
    if (gelu_input.ok()) {
      gelu_input_ = *std::move(gelu_input);
      return absl::OkStatus();
    }
    if (!absl::IsUnimplemented(gelu_input.status())) return gelu_input.status();
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      USINE_LOG(WARNING) << layer_ << ": no GELU epilogue (" << gelu_input.status().message()
                         << "); a GELU kernel follows the product instead";
    }
  }
  ASSIGN_OR_RETURN(Tensor pre, Tensor::Empty(y.shape(), dtype_, device_));
  RETURN_IF_ERROR(
      Matmul(x_operand, w_operand, pre, {.transpose_b = true, .bias = bias}, LayerStream(device_)));
  RETURN_IF_ERROR(GeluForwardOn(pre, y));
  gelu_input_ = std::move(pre);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> LinearProduct::OperandAndBiasGradient(const Tensor& dy, const Tensor& dy2,
                                                             const Tensor* bias_grad) const {
  // On CUDA under bf16 products the rounding of an f32 dy and its sums come from one pass over
  // it; the bits are those of the cast and the sums apart. (A dy already in bf16 is summed as it
  // is, and is its own operand.)
  if (bias_grad != nullptr && device_.is_cuda() &&
      ProductOperandDType(dy.dtype(), dy.device()) != dy.dtype()) {
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

absl::StatusOr<Tensor> LinearProduct::GeluGradientOperand(const Tensor& dy2,
                                                          const Tensor* bias_grad) const {
  ASSIGN_OR_RETURN(Tensor input2, gelu_input_->Reshape(dy2.shape()));
  if (device_.is_cuda()) {  // One pass: the gradient as the products read it, and its sums.
    // In the dtype of the x operand that Forward kept: the other operand of dh's product.
    ASSIGN_OR_RETURN(Tensor dh, Tensor::Empty(dy2.shape(), x_->dtype(), device_));
    if (bias_grad != nullptr) {
      RETURN_IF_ERROR(CudaGeluBackwardAndColumnSums(input2, dy2, out_, dh, *bias_grad));
    } else {
      RETURN_IF_ERROR(CudaGeluBackward(input2, dy2, dh));
    }
    return dh;
  }
  ASSIGN_OR_RETURN(Tensor dh, Tensor::Empty(dy2.shape(), dtype_, device_));
  RETURN_IF_ERROR(GeluBackwardOn(input2, dy2, dh));
  return OperandAndBiasGradient(dh, dh, bias_grad);
}

absl::StatusOr<Tensor> LinearProduct::Backward(const Tensor& dy, const Tensor& weight_grad,
                                               const Tensor* bias_grad) {
  return BackwardWith(dy, weight_grad, bias_grad, /*through_gelu=*/true, /*gelu_below=*/nullptr);
}

absl::StatusOr<Tensor> LinearProduct::Preactivation() const {
  if (activation_ != LinearActivation::kGelu) {
    return absl::FailedPreconditionError(
        absl::StrCat(layer_, ": no pre-activation output without a GELU"));
  }
  if (!gelu_input_) {
    return absl::FailedPreconditionError(absl::StrCat(layer_, "::Preactivation before Forward"));
  }
  return *gelu_input_;
}

absl::StatusOr<Tensor> LinearProduct::BackwardThroughGelu(const Tensor& dy,
                                                          const Tensor& preactivation,
                                                          const Tensor& weight_grad,
                                                          const Tensor* bias_grad) {
  return BackwardWith(dy, weight_grad, bias_grad, /*through_gelu=*/true, &preactivation);
}

absl::StatusOr<Tensor> LinearProduct::BackwardFromPreactivation(const Tensor& dh,
                                                                const Tensor& weight_grad,
                                                                const Tensor* bias_grad) {
  if (activation_ != LinearActivation::kGelu) {
    return absl::FailedPreconditionError(
        absl::StrCat(layer_, "::BackwardFromPreactivation: the layer has no GELU (call Backward)"));
  }
  return BackwardWith(dh, weight_grad, bias_grad, /*through_gelu=*/false, nullptr);
}

absl::StatusOr<Tensor> LinearProduct::BackwardWith(const Tensor& dy, const Tensor& weight_grad,
                                                   const Tensor* bias_grad, bool through_gelu,
                                                   const Tensor* gelu_below) {
  if (!x_) return absl::FailedPreconditionError(absl::StrCat(layer_, "::Backward before Forward"));
  RETURN_IF_ERROR(CheckProductInput(dy, dtype_, device_, out_, absl::StrCat(layer_, " dy")));
  const int64_t rows = x_->numel() / in_;
  if (dy.numel() != rows * out_) {
    return absl::InvalidArgumentError(absl::StrCat(
        layer_, " dy: ", dy.DebugString(), " does not match the input ", x_->DebugString()));
  }
  if (gelu_below != nullptr) {
    // Checked before any gradient is added to, so that a refusal changes nothing.
    const std::string what = absl::StrCat(layer_, " preactivation");
    RETURN_IF_ERROR(CheckProductInput(*gelu_below, dtype_, device_, in_, what));
    RETURN_IF_ERROR(CheckShape(*gelu_below, x_->shape(), what));
  }
  ASSIGN_OR_RETURN(Tensor dy2, dy.Reshape({rows, out_}));
  ASSIGN_OR_RETURN(Tensor x2, x_->Reshape({rows, in_}));
  ASSIGN_OR_RETURN(Tensor dy2_operand, activation_ == LinearActivation::kGelu && through_gelu
                                           ? GeluGradientOperand(dy2, bias_grad)
                                           : OperandAndBiasGradient(dy2, dy2, bias_grad));
  RETURN_IF_ERROR(Matmul(dy2_operand, x2, weight_grad, {.transpose_a = true, .beta = 1.0f},
                         LayerStream(device_)));
  return InputGradient(dy2_operand, gelu_below);
}

absl::StatusOr<Tensor> LinearProduct::InputGradient(const Tensor& dy2_operand,
                                                    const Tensor* gelu_below) const {
  const Stream stream = LayerStream(device_);
  const int64_t rows = dy2_operand.dim(0);
  const DType dx_dtype = input_gradient_operand_ ? ProductOperandDType(dtype_, device_) : dtype_;
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), dx_dtype, device_));
  ASSIGN_OR_RETURN(Tensor dx2, dx.Reshape({rows, in_}));
  if (gelu_below != nullptr && dx_dtype == DType::kBF16 && gelu_below->dtype() == DType::kBF16) {
    // CUDA under bf16 products: the product writes dh itself.
    ASSIGN_OR_RETURN(Tensor below2, gelu_below->Reshape({rows, in_}));
    const absl::Status fused =
        Matmul(dy2_operand, *w_, dx2,
               {.epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &below2}, stream);
    if (!absl::IsUnimplemented(fused)) return fused.ok() ? absl::StatusOr<Tensor>(dx) : fused;
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      USINE_LOG(WARNING) << layer_ << ": no GELU-gradient epilogue (" << fused.message()
                         << "); a GELU-backward kernel follows the product instead";
    }
  }
  RETURN_IF_ERROR(Matmul(dy2_operand, *w_, dx2, {}, stream));
  // The cpu's emulation of a bf16 output rounds where cuBLASLt does: dx, or with a GELU below
  // dh alone, once, after the derivative, as the DGELU epilogue does.
  Tensor out = dx;
  if (gelu_below != nullptr) {
    ASSIGN_OR_RETURN(out, Tensor::Empty(x_->shape(), dx_dtype, device_));
    RETURN_IF_ERROR(GeluBackwardOn(*gelu_below, dx, out));
  }
  if (input_gradient_operand_) RETURN_IF_ERROR(EmulateProductOperandOutput(out));
  return out;
}

}  // namespace usine::nn_internal
