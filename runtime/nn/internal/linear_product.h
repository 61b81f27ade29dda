// The products of a linear layer, y = act(x W^T (+ b)) over x's last dimension with W [out, in]
// and an optional activation (linear_activation.h), as Linear (linear.h) and its
// tensor-parallel forms (column_ and row_parallel_linear.h) all compute them, on the cpu and on
// CUDA: the operands as the products read them (ProductOperand: bf16 copies under
// MatmulPrecision::kBf16 on CUDA, cast once a step and kept for the backward pass), and on CUDA
// the bias gradient from the same pass over dy that rounds it. Every call is enqueued on
// LayerStream (real_types.h). The layers add their collectives around it.
//
// With GELU, under bf16 products on CUDA, the forward pass is one cuBLASLt product with a GELU
// epilogue (matmul.h): it writes y in bf16 and the GELU's input in bf16, the bias rounded to
// bf16 first (cuBLASLt adds a bias of the output's type); Backward is one kernel that reads dy
// and that input and writes the bf16 gradient operand and the bias sums. Elsewhere the product
// writes the GELU's input in the layer's dtype and a GELU kernel follows, with the bits of a
// Linear and a Gelu (gelu.h) in sequence. The MLP hands the GELU's gradient to the next layer
// instead (Preactivation, BackwardThroughGelu, BackwardFromPreactivation below), whose
// input-gradient product applies the derivative (on CUDA under bf16, cuBLASLt's DGELU).
//
//   LinearProduct product("Linear", /*in=*/768, /*out=*/3072, DType::kF32, device);
//   ASSIGN_OR_RETURN(Tensor y, product.Forward(x, weight.value, &bias.value));
//   ASSIGN_OR_RETURN(Tensor dx, product.Backward(dy, weight.grad, &bias.grad));
//
// Not thread-safe.
#ifndef USINE_RUNTIME_NN_INTERNAL_LINEAR_PRODUCT_H_
#define USINE_RUNTIME_NN_INTERNAL_LINEAR_PRODUCT_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/linear_activation.h"

namespace usine::nn_internal {

class LinearProduct {
 public:
  // `layer` names the layer in errors ("Linear input: ..."); it must outlive this object (a
  // string literal). dtype and device are the layer's (CheckLayerPlacement'd).
  // `output_operand`: y in ProductOperandDType's even without an activation;
  // `input_gradient_operand`: dx in ProductOperandDType's (LinearOptions has both).
  LinearProduct(absl::string_view layer, int64_t in_features, int64_t out_features, DType dtype,
                Device device, LinearActivation activation = LinearActivation::kNone,
                bool output_operand = false, bool input_gradient_operand = false)
      : layer_(layer),
        in_(in_features),
        out_(out_features),
        dtype_(dtype),
        device_(device),
        activation_(activation),
        output_operand_(output_operand),
        input_gradient_operand_(input_gradient_operand) {}

  // x [..., in] -> y [..., out] = act(x W^T (+ *bias unless null)), y in the layer's dtype, or
  // with an activation or output_operand in ProductOperandDType's (the next product's operand;
  // a bf16 y adds the bias rounded to bf16, as cuBLASLt adds a bias of y's type). x is in the
  // layer's dtype or already ProductOperandDType's (CheckProductInput). Keeps x's and W's
  // operands (and the activation's input) for Backward. W: [out, in]; bias: [out].
  // With a residual (y's shape, the layer's dtype and device; no activation and no
  // output_operand, else InvalidArgument): y = *residual + x W^T (+ bias), the sum made by the
  // product itself (MatmulOptions::addend), the bias added last.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x, const Tensor& weight,
                                               const Tensor* bias,
                                               const Tensor* residual = nullptr);
  // dy [..., out] (the gradient of Forward's output, in the layer's dtype or already in
  // ProductOperandDType's: as a next layer with input_gradient_operand writes it, or the bf16
  // flash attention its dqkv; then the bias gradient sums its bf16 values) ->
  // dx [..., in] (a new tensor, in the layer's dtype or with input_gradient_operand in
  // ProductOperandDType's: the product writes it in bf16 on CUDA under bf16 products, and the
  // cpu's emulation rounds it to those values, EmulateProductOperandOutput); adds dL/dW into
  // weight_grad and, unless null, dL/db (the column sums of the gradient of the pre-activation
  // output) into *bias_grad. FailedPrecondition before Forward.
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy, const Tensor& weight_grad,
                                                const Tensor* bias_grad);

  // The backward pass of two linear layers with a GELU between them (linear_sublayer.h): the
  // layer whose activation the GELU is keeps its input, the pre-activation output h
  // (Preactivation); the layer that reads the GELU's output makes dh from its input-gradient
  // product (BackwardThroughGelu); the first takes dh in place of its output's gradient
  // (BackwardFromPreactivation).
  //
  // With a GELU, after Forward: h as Forward kept it, y's shape (bf16 where the product's
  // GELU epilogue wrote it, else the layer's dtype). FailedPrecondition otherwise.
  [[nodiscard]] absl::StatusOr<Tensor> Preactivation() const;
  // Backward, but dx multiplied elementwise by gelu'(preactivation) (x's shape, on the layer's
  // device, in the layer's dtype or bf16): dh in the dtype Backward's dx has. On CUDA, for a
  // bf16 dx and a bf16 h, the input-gradient product applies it (MatmulEpilogue::
  // kGeluGradient), else a GELU-backward kernel follows the product.
  [[nodiscard]] absl::StatusOr<Tensor> BackwardThroughGelu(const Tensor& dy,
                                                           const Tensor& preactivation,
                                                           const Tensor& weight_grad,
                                                           const Tensor* bias_grad);
  // With a GELU: Backward from dh, the gradient of the pre-activation output (as
  // BackwardThroughGelu writes it, or as Backward's dy may be), in place of the GELU output's.
  // FailedPrecondition without a GELU.
  [[nodiscard]] absl::StatusOr<Tensor> BackwardFromPreactivation(const Tensor& dh,
                                                                 const Tensor& weight_grad,
                                                                 const Tensor* bias_grad);

  // Forward's conditions on a residual for an output of `y_shape` (InvalidArgument naming it).
  [[nodiscard]] absl::Status CheckResidual(const Tensor& residual, const Shape& y_shape) const;

  // Drops the kept operands.
  void Clear() {
    x_.reset();
    w_.reset();
    gelu_input_.reset();
  }

 private:
  // The bias as a product into y adds it: a bf16 copy for a bf16 y; nullopt for none.
  absl::StatusOr<std::optional<Tensor>> BiasOf(const Tensor* bias, const Tensor& y) const;
  // GELU's Forward: y (ProductOperandDType's) from the operands; keeps the GELU's input.
  absl::Status ForwardGelu(const Tensor& x_operand, const Tensor& w_operand, const Tensor* bias,
                           const Tensor& y);
  // The product with cuBLASLt's GELU epilogue into the bf16 y, returning the GELU's input;
  // Unimplemented where cuBLASLt has no such product (ForwardGelu then runs the product and the
  // GELU kernel, and asks again on the next call: the answer may depend on the row count).
  absl::StatusOr<Tensor> GeluEpilogueProduct(const Tensor& x_operand, const Tensor& w_operand,
                                             const Tensor* bias, const Tensor& y) const;
  // dy as the products read it, with its column sums added into *bias_grad unless null.
  absl::StatusOr<Tensor> OperandAndBiasGradient(const Tensor& dy, const Tensor& dy2,
                                                const Tensor* bias_grad) const;
  // GELU's gradient from dy2 [rows, out] as the products read it, with its column sums added
  // into *bias_grad unless null.
  absl::StatusOr<Tensor> GeluGradientOperand(const Tensor& dy2, const Tensor* bias_grad) const;
  // What Backward, BackwardThroughGelu and BackwardFromPreactivation share: `through_gelu`
  // says whether dy passes through this layer's GELU (false for a pre-activation gradient);
  // `gelu_below` is BackwardThroughGelu's h, or null.
  absl::StatusOr<Tensor> BackwardWith(const Tensor& dy, const Tensor& weight_grad,
                                      const Tensor* bias_grad, bool through_gelu,
                                      const Tensor* gelu_below);
  // dx [rows, in] = dy2_operand W, or with gelu_below dh = dx * gelu'(*gelu_below), in the dtype
  // Backward's dx has, shaped as Forward's x.
  absl::StatusOr<Tensor> InputGradient(const Tensor& dy2_operand, const Tensor* gelu_below) const;

  absl::string_view layer_;
  int64_t in_;
  int64_t out_;
  DType dtype_;
  Device device_;
  LinearActivation activation_;
  bool output_operand_;
  bool input_gradient_operand_;
  std::optional<Tensor> x_;  // Forward's input, as ProductOperand made it.
  std::optional<Tensor> w_;  // The weight, likewise (about 170 MB over GPT-2 124M's blocks).
  std::optional<Tensor> gelu_input_;  // With GELU: its input, [rows, out].
};

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_LINEAR_PRODUCT_H_
