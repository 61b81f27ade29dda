#include "runtime/nn/sublayer.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/residual_sum.h"

namespace usine {

absl::StatusOr<Tensor> Sublayer::ForwardAdding(const Tensor& x, const Tensor& residual) {
  ASSIGN_OR_RETURN(const Tensor y, Forward(x));
  return nn_internal::ResidualSum(residual, y, "sub-layer output");
}

}  // namespace usine
