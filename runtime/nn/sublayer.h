// A module mapping one tensor x [..., in] to one y [..., out], with virtual Forward and
// Backward: the linear layers (linear.h and its tensor-parallel forms, column_ and
// row_parallel_linear.h), so that attention and the MLP hold either kind, and the block's
// sub-layers. Unlike most modules' (module.h), these Forward and Backward are virtual: one
// indirect call per layer and step.
#ifndef USINE_RUNTIME_NN_SUBLAYER_H_
#define USINE_RUNTIME_NN_SUBLAYER_H_

#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

class Sublayer : public Module {
 public:
  // x [..., in] -> y [..., out]. Saves what Backward needs.
  [[nodiscard]] virtual absl::StatusOr<Tensor> Forward(const Tensor& x) = 0;
  // dy [..., out] -> dx [..., in]; adds into the parameters' gradients.
  [[nodiscard]] virtual absl::StatusOr<Tensor> Backward(const Tensor& dy) = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SUBLAYER_H_
