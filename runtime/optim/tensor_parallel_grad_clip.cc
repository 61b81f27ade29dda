#include "runtime/optim/tensor_parallel_grad_clip.h"

#include <cmath>
#include <vector>

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/optim/grad_clip.h"

namespace usine {

absl::StatusOr<double> ClipTensorParallelGradientNorm(absl::Span<const NamedParameter> parameters,
                                                      double max_norm, Communicator* tp) {
  if (tp == nullptr || tp->size() == 1) return ClipGradientNorm(parameters, max_norm);
  if (!parameters.empty()) MarkOp("clip", parameters.front().parameter->grad.device());
  ASSIGN_OR_RETURN(const std::vector<float> norms, GradientNormsToHost(parameters));
  double sharded = 0, replicated = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const double square = static_cast<double>(norms[i]) * norms[i];
    (parameters[i].parameter->split.sharded() ? sharded : replicated) += square;
  }
  // The communicators reduce no f64: gather the ranks' sums and add them in rank order, which
  // gives every rank the same bits.
  ASSIGN_OR_RETURN(Tensor mine, Tensor::Empty({1}, DType::kF64));
  ASSIGN_OR_RETURN(Tensor all, Tensor::Empty({tp->size()}, DType::kF64));
  *static_cast<double*>(mine.raw_data()) = sharded;
  RETURN_IF_ERROR(tp->AllGather(mine, all));
  double sum_of_squares = 0;
  for (int r = 0; r < tp->size(); ++r) sum_of_squares += static_cast<double*>(all.raw_data())[r];
  const double norm = std::sqrt(sum_of_squares + replicated);
  const float factor = ClipFactor(norm, max_norm);
  if (factor != 1.0f) RETURN_IF_ERROR(ScaleGradients(parameters, factor));
  return norm;
}

}  // namespace usine
