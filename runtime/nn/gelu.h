// GELU with GPT-2's tanh approximation, elementwise; no parameters. Module contract: module.h.
// A GELU that follows a linear layer is better that layer's activation (linear_activation.h),
// which fuses the two; this module is the GELU on its own.
//
//   Gelu gelu(DType::kF32);
//   ASSIGN_OR_RETURN(Tensor y, gelu.Forward(h));
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
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy);

 private:
  void ClearSaved() override { x_.reset(); }

  DType dtype_;
  std::optional<Tensor> x_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_GELU_H_
