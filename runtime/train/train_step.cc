#include "runtime/train/train_step.h"

#include "runtime/core/status_macros.h"
#include "runtime/optim/tensor_parallel_grad_clip.h"
#include "runtime/train/data_parallel.h"

namespace usine {
namespace {

// The mean of `value` over the ranks of `dp`, in double (the communicators reduce no f64:
// gathered and added in rank order, the same bits on every rank).
absl::StatusOr<double> AverageOver(Communicator* dp, double value) {
  if (dp == nullptr || dp->size() == 1) return value;
  ASSIGN_OR_RETURN(Tensor mine, Tensor::Empty({1}, DType::kF64));
  ASSIGN_OR_RETURN(Tensor all, Tensor::Empty({dp->size()}, DType::kF64));
  *static_cast<double*>(mine.raw_data()) = value;
  RETURN_IF_ERROR(dp->AllGather(mine, all));
  double sum = 0;
  for (int r = 0; r < dp->size(); ++r) sum += static_cast<const double*>(all.raw_data())[r];
  return sum / dp->size();
}

}  // namespace

absl::StatusOr<TrainStepResult> TrainStep(Gpt& model, const Tensor& tokens, AdamW& optimizer,
                                          const TrainStepOptions& options) {
  RETURN_IF_ERROR(model.ZeroGrad());  // With a reducer, this zeroes its buckets.
  if (options.reducer != nullptr) RETURN_IF_ERROR(options.reducer->BeginStep(/*reduce=*/true));
  ASSIGN_OR_RETURN(const double local_loss, model.Forward(tokens));
  if (options.reducer != nullptr) {
    // Buckets start reducing as backward finishes each block's gradients.
    GradientReadyMarker marker(model, *options.reducer);
    RETURN_IF_ERROR(model.Backward(1.0, [&](Module& m) { return marker.MarkModule(m); }));
    RETURN_IF_ERROR(options.reducer->Finish());
  } else {
    RETURN_IF_ERROR(model.Backward());
  }
  TrainStepResult result;
  ASSIGN_OR_RETURN(result.grad_norm, ClipTensorParallelGradientNorm(
                                         model.Parameters(), options.max_grad_norm, model.tp()));
  RETURN_IF_ERROR(optimizer.Step(options.lr));
  ASSIGN_OR_RETURN(result.loss, AverageOver(options.dp, local_loss));
  return result;
}

}  // namespace usine
