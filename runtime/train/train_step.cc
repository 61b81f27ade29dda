#include "runtime/train/train_step.h"

#include <cmath>
#include <optional>
#include <vector>

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/tensor_parallel_grad_clip.h"
#include "runtime/train/data_parallel.h"

namespace usine {

absl::StatusOr<double> AverageOverRanks(Communicator* group, double value) {
  if (group == nullptr || group->size() == 1) return value;
  ASSIGN_OR_RETURN(Tensor mine, Tensor::Empty({1}, DType::kF64));
  ASSIGN_OR_RETURN(Tensor all, Tensor::Empty({group->size()}, DType::kF64));
  *static_cast<double*>(mine.raw_data()) = value;
  RETURN_IF_ERROR(group->AllGather(mine, all));
  double sum = 0;
  for (int r = 0; r < group->size(); ++r) sum += static_cast<const double*>(all.raw_data())[r];
  return sum / group->size();
}

absl::StatusOr<bool> AnyRank(Communicator* group, bool flag) {
  if (group == nullptr || group->size() == 1) return flag;
  ASSIGN_OR_RETURN(Tensor t, Tensor::Empty({1}, DType::kF32));
  *static_cast<float*>(t.raw_data()) = flag ? 1.0f : 0.0f;
  RETURN_IF_ERROR(group->AllReduce(t, ReduceOp::kMax));
  return *static_cast<const float*>(t.raw_data()) != 0.0f;
}

namespace {

// Zeroes the gradients, runs forward and backward over the micro-batches and waits for the
// reductions. False (result->skipped set) when the ranks agreed to skip the step.
absl::StatusOr<bool> AccumulateGradients(TokenModel& model, absl::Span<const Tensor> micro_batches,
                                         const TrainStepOptions& options, TrainStepResult* result) {
  if (micro_batches.empty()) return absl::InvalidArgumentError("TrainStep: no micro-batch");
  const double dloss = 1.0 / static_cast<double>(micro_batches.size());
  RETURN_IF_ERROR(model.ZeroGrad());  // With a reducer, this zeroes its buckets.
  std::optional<GradientReadyMarker> marker;
  if (options.reducer != nullptr) marker.emplace(model, *options.reducer);
  double loss_sum = 0;
  bool finite = true;
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const bool last = i + 1 == micro_batches.size();
    absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(const double loss, model.Forward(micro_batches[i]));
    loss_sum += loss;
    finite = finite && std::isfinite(loss);
    result->times.forward += absl::Now() - start;
    if (last) {
      // Before the last backward, so before any bucket starts reducing.
      ASSIGN_OR_RETURN(const bool any_bad, AnyRank(options.dp, !finite));
      if (any_bad) {
        model.ReleaseActivations();
        result->skipped = true;
        result->loss = result->grad_norm = std::nan("");
        return false;
      }
    }
    start = absl::Now();
    if (options.reducer == nullptr) {
      RETURN_IF_ERROR(model.Backward(dloss));
    } else {
      RETURN_IF_ERROR(options.reducer->BeginStep(/*reduce=*/last));
      RETURN_IF_ERROR(model.Backward(
          dloss, [&](Module& m) { return last ? marker->MarkModule(m) : absl::OkStatus(); }));
      // A model that reports no (or not every) finished child: the rest reduce now.
      if (last) RETURN_IF_ERROR(marker->MarkRemaining());
    }
    result->times.backward += absl::Now() - start;
  }
  const absl::Time start = absl::Now();
  // On CUDA the timeline is the default stream's: this segment holds what that stream ran
  // while the host waited for the reducer, not the wait on the communication stream itself.
  MarkOp("gradient reduction wait", micro_batches.front().device());
  if (options.reducer != nullptr) RETURN_IF_ERROR(options.reducer->Finish());
  result->times.communication = absl::Now() - start;
  ASSIGN_OR_RETURN(result->loss, AverageOverRanks(options.dp, loss_sum * dloss));
  return true;
}

}  // namespace

absl::StatusOr<TrainStepResult> TrainStep(TokenModel& model, absl::Span<const Tensor> micro_batches,
                                          AdamW& optimizer, const TrainStepOptions& options) {
  TrainStepResult result;
  ASSIGN_OR_RETURN(const bool go_on, AccumulateGradients(model, micro_batches, options, &result));
  if (!go_on) return result;
  const absl::Time start = absl::Now();
  // The norm alone: AdamW applies the clipping factor as it reads the gradients (the bits of
  // scaled gradients, without a pass over them).
  ASSIGN_OR_RETURN(result.grad_norm,
                   ClipTensorParallelGradientNorm(model.Parameters(), /*max_norm=*/0, model.tp()));
  result.skipped = !std::isfinite(result.grad_norm);
  if (!result.skipped) {
    RETURN_IF_ERROR(
        optimizer.Step(options.lr, ClipFactor(result.grad_norm, options.max_grad_norm)));
  }
  result.times.optimizer = absl::Now() - start;
  return result;
}

absl::StatusOr<TrainStepResult> TrainStep(TokenModel& model, absl::Span<const Tensor> micro_batches,
                                          ZeroAdamW& optimizer, const TrainStepOptions& options) {
  if (options.reducer != nullptr) {
    return absl::InvalidArgumentError(
        "TrainStep: ZeroAdamW reduces the gradients itself; pass no gradient reducer");
  }
  TrainStepResult result;
  ASSIGN_OR_RETURN(const bool go_on, AccumulateGradients(model, micro_batches, options, &result));
  if (!go_on) return result;
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(result.grad_norm, optimizer.Step(options.lr, options.max_grad_norm));
  result.skipped = !std::isfinite(result.grad_norm);
  result.times.optimizer = absl::Now() - start;
  return result;
}

}  // namespace usine
