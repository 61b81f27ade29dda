// The sum of a residual stream and a branch's output, a block's skip connection, on the cpu
// (f32 or f64) and on CUDA (f32), into a new tensor. For the sub-layers that cannot fold it into
// a product (sublayer.h's ForwardAdding) and for decoding.
//
//   ASSIGN_OR_RETURN(Tensor r, ResidualSum(x, attention_output, "Block attention output"));
#ifndef USINE_RUNTIME_NN_INTERNAL_RESIDUAL_SUM_H_
#define USINE_RUNTIME_NN_INTERNAL_RESIDUAL_SUM_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/tensor.h"

namespace usine::nn_internal {

// stream + branch, elementwise, ordered on LayerStream. `what` names the branch in errors
// (InvalidArgument for other shapes, devices or dtypes). REQUIRES: a real dtype, f32 on CUDA
// (the layers that produced them checked it).
[[nodiscard]] absl::StatusOr<Tensor> ResidualSum(const Tensor& stream, const Tensor& branch,
                                                 absl::string_view what);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_RESIDUAL_SUM_H_
