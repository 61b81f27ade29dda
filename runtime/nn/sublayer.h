// A module mapping one tensor x [..., in] to one y [..., out], with virtual Forward and
// Backward: the linear layers (linear.h and its tensor-parallel forms, column_ and
// row_parallel_linear.h), so that attention and the MLP hold either kind, and the block's
// sub-layers. Unlike most modules' (module.h), these Forward and Backward are virtual: one
// indirect call per layer and step.
//
//   ASSIGN_OR_RETURN(Tensor r, attn->ForwardAdding(ln_1_output, x));  // r = x + attn(ln_1(x))
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
  // residual + Forward(x) in a new tensor: the output added to a residual stream (y's shape,
  // dtype and device), as a block's skip connection adds it. Backward is Forward's (the sum
  // passes dy to both sides; the block joins the skip's share). By default Forward and then a
  // sum; a Linear whose output is in its own dtype makes the sum in its product, with no pass of
  // its own (MatmulOptions::addend), and attention and the MLP hand the residual to their last
  // Linear.
  [[nodiscard]] virtual absl::StatusOr<Tensor> ForwardAdding(const Tensor& x,
                                                             const Tensor& residual);
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SUBLAYER_H_
