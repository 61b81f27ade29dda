// What a linear layer (linear.h, column_parallel_linear.h) applies to its output before
// returning it. With an activation the layer's Forward returns act(x W^T + b), as the next
// product reads it, and its Backward takes the gradient of that output: the layer and the
// activation are one module, so that their passes over the output can be fused (see
// LinearProduct, internal/linear_product.h).
//
//   ASSIGN_OR_RETURN(auto fc, Linear::Create({.in_features = 768, .out_features = 3072,
//                                             .activation = LinearActivation::kGelu}, init));
#ifndef USINE_RUNTIME_NN_LINEAR_ACTIVATION_H_
#define USINE_RUNTIME_NN_LINEAR_ACTIVATION_H_

namespace usine {

enum class LinearActivation {
  kNone,  // y = x W^T + b. The default.
  kGelu,  // y = gelu(x W^T + b), GPT-2's tanh approximation (gelu.h).
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_LINEAR_ACTIVATION_H_
