// One of a transformer block's two sub-layers (attention, MLP): a module mapping x [B, T, C]
// to [B, T, C]. Block (block.h) holds its sub-layers through this interface so that the
// same block takes the plain layers or their tensor-parallel forms (parallel_attention.h,
// parallel_mlp.h). Unlike most modules' (module.h), these Forward and Backward are virtual:
// one indirect call per sub-layer and step.
#ifndef USINE_RUNTIME_NN_SUBLAYER_H_
#define USINE_RUNTIME_NN_SUBLAYER_H_

#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

class Sublayer : public Module {
 public:
  // x [B, T, C] -> y [B, T, C]. Saves what Backward needs.
  [[nodiscard]] virtual absl::StatusOr<Tensor> Forward(const Tensor& x) = 0;
  // dy [B, T, C] -> dx [B, T, C]; adds into the parameters' gradients.
  [[nodiscard]] virtual absl::StatusOr<Tensor> Backward(const Tensor& dy) = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SUBLAYER_H_
