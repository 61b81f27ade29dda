// The linear layers as one kind of Sublayer (Linear, linear.h, and its tensor-parallel forms,
// column_ and row_parallel_linear.h), with the backward pass of two of them joined by a GELU,
// as the MLP's c_fc (whose activation the GELU is) and c_proj (which reads the GELU's output)
// are: c_proj's input-gradient product applies the GELU's derivative to its result, so the
// gradient of c_fc's pre-activation output comes from that product, with no pass of its own over
// the 4C-wide gradients between the two layers (on CUDA under bf16 products cuBLASLt's DGELU
// epilogue, MatmulEpilogue::kGeluGradient in matmul.h).
//
//   ASSIGN_OR_RETURN(Tensor h, c_fc->Preactivation());                 // after both Forwards
//   ASSIGN_OR_RETURN(Tensor dh, c_proj->BackwardThroughGelu(dy, h));
//   ASSIGN_OR_RETURN(Tensor dx, c_fc->BackwardFromPreactivation(dh));
//   // dx and the gradients as c_fc->Backward(c_proj->Backward(dy)) gives them (rounded
//   // differently on CUDA under bf16 products).
#ifndef USINE_RUNTIME_NN_LINEAR_SUBLAYER_H_
#define USINE_RUNTIME_NN_LINEAR_SUBLAYER_H_

#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/sublayer.h"

namespace usine {

class LinearSublayer : public Sublayer {
 public:
  // With a GELU activation, after Forward: the GELU's input, the pre-activation output
  // x W^T + b, as Forward kept it (this rank's columns under a column split; bf16 where the
  // product's GELU epilogue wrote it, else the layer's dtype). FailedPrecondition otherwise.
  [[nodiscard]] virtual absl::StatusOr<Tensor> Preactivation() const = 0;
  // Backward(dy) with dx multiplied elementwise by gelu'(preactivation): the gradient of the
  // pre-activation output of the layer whose GELU made this layer's input (`preactivation`, its
  // Preactivation(), of x's shape), in the dtype Backward's dx has. Adds into the parameters'
  // gradients as Backward does. InvalidArgument, with nothing added, for a `preactivation` of
  // another shape, dtype or device.
  [[nodiscard]] virtual absl::StatusOr<Tensor> BackwardThroughGelu(const Tensor& dy,
                                                                   const Tensor& preactivation) = 0;
  // With a GELU activation: Backward from dh, the gradient of the pre-activation output
  // (BackwardThroughGelu's result), in place of the GELU output's. FailedPrecondition without a
  // GELU.
  [[nodiscard]] virtual absl::StatusOr<Tensor> BackwardFromPreactivation(const Tensor& dh) = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_LINEAR_SUBLAYER_H_
