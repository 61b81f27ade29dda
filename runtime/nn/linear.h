// A fully connected layer: y = x W^T + b over the last dimension, W [out, in] (PyTorch's
// nn.Linear layout; GPT-2's Hugging Face Conv1D stores W^T), parameters "weight" and "bias",
// optionally followed by an activation (linear_activation.h). Module contract: module.h.
//
//   ParameterInitializer init(seed);
//   ASSIGN_OR_RETURN(auto fc, Linear::Create({.in_features = 768, .out_features = 3072}, init));
//   ASSIGN_OR_RETURN(Tensor y, fc->Forward(x));     // x [B, T, 768] -> y [B, T, 3072]
//   ASSIGN_OR_RETURN(Tensor dx, fc->Backward(dy));  // adds into weight/bias grads
#ifndef USINE_RUNTIME_NN_LINEAR_H_
#define USINE_RUNTIME_NN_LINEAR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/internal/linear_product.h"
#include "runtime/nn/linear_activation.h"
#include "runtime/nn/linear_sublayer.h"
#include "runtime/nn/module.h"

namespace usine {

struct LinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;               // Default: with a bias (initialised to 0).
  double init_stddev = 0.02;      // Default: W ~ normal(0, 0.02), GPT-2's.
  DType dtype = DType::kF32;      // f32 or f64. Default: f32.
  Device device = Device::Cpu();  // Default: the cpu. CUDA devices compute in f32 only.
  LinearActivation activation = LinearActivation::kNone;  // Default: none.
  // y in ProductOperandDType's (bf16 on CUDA under bf16 products) without an activation too,
  // for a reader that takes bf16 (a product; the bf16 flash attention kernel); the bias is then
  // rounded to bf16 first. Default: false, y in the layer's dtype.
  bool output_operand = false;
  // Backward's dx in ProductOperandDType's, for a previous layer that takes its output's
  // gradient so (a GELU-activated Linear, or the bf16 flash attention, whose backward passes
  // round it to bf16 anyway): on
  // CUDA under bf16 products the product writes it in bf16, half the bytes, as PyTorch's
  // autocast does; the cpu's emulation rounds it to those values. Default: false.
  bool input_gradient_operand = false;
};

class Linear : public LinearSublayer {
 public:
  // Draws W from `init`. REQUIRES: positive feature counts.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Linear>> Create(const LinearOptions& options,
                                                                      ParameterInitializer& init);

  // x [..., in] -> y [..., out]. Saves x and the weight as the products read them
  // (ProductOperand: bf16 copies under MatmulPrecision::kBf16 on CUDA, cast once a step; the
  // weight's copy lives until Backward, about 170 MB over GPT-2 124M's blocks). x is in the
  // layer's dtype, or already in ProductOperandDType's (bf16 there, as a GELU layer or
  // LayerNorm::ForwardOperand writes it), then taken as it is. y is in the layer's dtype; with
  // an activation or output_operand, in ProductOperandDType's, as the next product reads it.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  // residual + Forward(x) (sublayer.h). Without an activation or output_operand the product
  // makes the sum, in the layer's dtype: y = (residual + x W^T) + b, one pass over y instead of
  // three. Otherwise Forward and then a sum.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardAdding(const Tensor& x,
                                                     const Tensor& residual) override;
  // dy [..., out] (in the layer's dtype, or already in ProductOperandDType's as Forward's x may
  // be) -> dx [..., in]; adds dL/dW and dL/db into the gradients.
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;
  // LinearSublayer's hand-off of a GELU's gradient (linear_sublayer.h).
  [[nodiscard]] absl::StatusOr<Tensor> Preactivation() const override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardThroughGelu(const Tensor& dy,
                                                           const Tensor& preactivation) override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardFromPreactivation(const Tensor& dh) override;

  Parameter& weight() { return *weight_; }
  const LinearOptions& options() const { return options_; }

 private:
  explicit Linear(const LinearOptions& options)
      : options_(options),
        product_("Linear", options.in_features, options.out_features, options.dtype, options.device,
                 options.activation, options.output_operand, options.input_gradient_operand) {}
  void ClearSaved() override { product_.Clear(); }
  const Tensor* bias_grad() const { return bias_ != nullptr ? &bias_->grad : nullptr; }

  LinearOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;  // nullptr without a bias.
  nn_internal::LinearProduct product_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_LINEAR_H_
