// The products of a linear layer, y = x W^T (+ b) over x's last dimension with W [out, in],
// as Linear (linear.h) and its tensor-parallel forms (column_ and row_parallel_linear.h) all
// compute them, on the cpu and on CUDA: the operands as the products read them
// (ProductOperand: bf16 copies under MatmulPrecision::kBf16 on CUDA, cast once a step and kept
// for the backward pass), and on CUDA the bias gradient from the same pass over dy that rounds
// it. Every call is enqueued on LayerStream (real_types.h). The layers add their collectives
// around it.
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

namespace usine::nn_internal {

class LinearProduct {
 public:
  // `layer` names the layer in errors ("Linear input: ..."); it must outlive this object (a
  // string literal). dtype and device are the layer's (CheckLayerPlacement'd).
  LinearProduct(absl::string_view layer, int64_t in_features, int64_t out_features, DType dtype,
                Device device)
      : layer_(layer), in_(in_features), out_(out_features), dtype_(dtype), device_(device) {}

  // x [..., in] -> y [..., out] = x W^T (+ *bias unless null), y in the layer's dtype. x is in
  // the layer's dtype or already ProductOperandDType's (CheckProductInput). Keeps x's and W's
  // operands for Backward. W: [out, in]; bias: [out].
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x, const Tensor& weight,
                                               const Tensor* bias);
  // dy [..., out] -> dx [..., in] (a new tensor); adds dL/dW into weight_grad and, unless null,
  // dL/db (dy's column sums) into *bias_grad. FailedPrecondition before Forward.
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy, const Tensor& weight_grad,
                                                const Tensor* bias_grad);

  // Drops the kept operands.
  void Clear() {
    x_.reset();
    w_.reset();
  }

 private:
  // dy as the products read it, with its column sums added into *bias_grad unless null.
  absl::StatusOr<Tensor> OperandAndBiasGradient(const Tensor& dy, const Tensor& dy2,
                                                const Tensor* bias_grad) const;

  absl::string_view layer_;
  int64_t in_;
  int64_t out_;
  DType dtype_;
  Device device_;
  std::optional<Tensor> x_;  // Forward's input, as ProductOperand made it.
  std::optional<Tensor> w_;  // The weight, likewise (about 170 MB over GPT-2 124M's blocks).
};

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_LINEAR_PRODUCT_H_
