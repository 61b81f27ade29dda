// GELU with GPT-2's tanh approximation, elementwise; no parameters. Module contract: module.h.
//
//   Gelu gelu(DType::kF32);
//   ASSIGN_OR_RETURN(Tensor y, gelu.Forward(h));
//   ASSIGN_OR_RETURN(Tensor y16, gelu.ForwardOperand(h));  // or for a product to read
//   ASSIGN_OR_RETURN(Tensor dh, gelu.Backward(dy));
#ifndef USINE_RUNTIME_NN_GELU_H_
#define USINE_RUNTIME_NN_GELU_H_

#include <optional>

#include "absl/status/statusor.h"

#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

class Gelu : public Module {
 public:
  // REQUIRES: dtype is f32 or f64 (checked by Forward).
  explicit Gelu(DType dtype) : dtype_(dtype) {}

  // Saves x.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x);
  // Forward's output as the next product reads it, ProductOperand(Forward(x)) (matmul.h): on
  // CUDA under bf16 products written in bf16 at once, with no f32 pass and cast in between;
  // elsewhere Forward's. For a GELU whose only reader is a Linear, as in the MLP.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardOperand(const Tensor& x);
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy);

 private:
  void ClearSaved() override { x_.reset(); }
  // Forward with its output in `out_dtype`: the input's, or bf16 on CUDA.
  absl::StatusOr<Tensor> ForwardTo(const Tensor& x, DType out_dtype);

  DType dtype_;
  std::optional<Tensor> x_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_GELU_H_
