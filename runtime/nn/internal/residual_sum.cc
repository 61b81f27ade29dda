#include "runtime/nn/internal/residual_sum.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/real_types.h"

namespace usine::nn_internal {

absl::StatusOr<Tensor> ResidualSum(const Tensor& stream, const Tensor& branch,
                                   absl::string_view what) {
  RETURN_IF_ERROR(CheckSameShape(branch, stream, what, "the residual stream"));
  RETURN_IF_ERROR(CheckSameDevice(branch, stream, what, "the residual stream"));
  RETURN_IF_ERROR(CheckSameDType(branch, stream, what, "the residual stream"));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty(stream.shape(), stream.dtype(), stream.device()));
  if (stream.device().is_cuda()) {
    RETURN_IF_ERROR(Add(stream, branch, out, LayerStream(stream.device())));
    return out;
  }
  VisitReal(stream.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    AddArrays(Elements<T>(stream), Elements<T>(branch), stream.numel(), Elements<T>(out));
  });
  return out;
}

}  // namespace usine::nn_internal
