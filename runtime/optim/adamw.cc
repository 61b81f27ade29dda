#include "runtime/optim/adamw.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/shard_boxes.h"
#include "runtime/optim/internal/adamw_update.h"
#include "runtime/optim/internal/cuda_adamw_update.h"

namespace usine {

absl::Status AdamWOptions::Validate() const {
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps > 0 && weight_decay >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW: need 0 <= beta1, beta2 < 1, eps > 0 and weight_decay >= 0, got beta1 ",
                     beta1, ", beta2 ", beta2, ", eps ", eps, ", weight_decay ", weight_decay));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AdamW>> AdamW::Create(std::vector<NamedParameter> parameters,
                                                     const AdamWOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(RequireGradients(parameters, "AdamW"));
  auto adamw = std::unique_ptr<AdamW>(new AdamW(options));
  for (NamedParameter& p : parameters) {
    const std::string what = absl::StrCat("AdamW parameter ", p.name);
    RETURN_IF_ERROR(CheckDType(p.parameter->value, DType::kF32, what));
    const Device device = p.parameter->value.device();
    RETURN_IF_ERROR(WithContext(CheckDeviceAvailable(device), what));
    RETURN_IF_ERROR(CheckDevice(p.parameter->grad, device, what + " grad"));
    Slot slot{.parameter = std::move(p), .exp_avg = Tensor(), .exp_avg_sq = Tensor()};
    const Shape& shape = slot.parameter.parameter->value.shape();
    ASSIGN_OR_RETURN(slot.exp_avg, Tensor::Empty(shape, DType::kF32, device));
    ASSIGN_OR_RETURN(slot.exp_avg_sq, Tensor::Empty(shape, DType::kF32, device));
    RETURN_IF_ERROR(Fill(slot.exp_avg, 0.0));
    RETURN_IF_ERROR(Fill(slot.exp_avg_sq, 0.0));
    adamw->slots_.push_back(std::move(slot));
  }
  return adamw;
}

absl::Status AdamW::Step(double lr, float grad_scale) {
  if (!(lr >= 0)) return absl::InvalidArgumentError(absl::StrCat("AdamW: learning rate ", lr));
  if (!(grad_scale >= 0 && std::isfinite(grad_scale))) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW: gradient scale ", grad_scale, " (must be finite and >= 0)"));
  }
  const int64_t t = step_ + 1;
  const optim_internal::AdamWCoefficients c =
      optim_internal::AdamWCoefficientsAt(options_, lr, t, grad_scale);
  if (!slots_.empty()) MarkOp("adamw", slots_.front().parameter.parameter->value.device());
  // CUDA parameters are updated in runs of consecutive ones on one device, many a launch.
  std::vector<optim_internal::AdamWArrays> run;
  std::string run_first;
  const auto flush = [&](const std::string& last) -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    absl::Status status =
        WithContext(optim_internal::CudaAdamWUpdate(c, run, run.front().value.device()),
                    absl::StrCat("AdamW parameters ", run_first, " to ", last));
    run.clear();
    return status;
  };
  std::string previous;
  for (Slot& slot : slots_) {
    const Parameter& p = *slot.parameter.parameter;
    RETURN_IF_ERROR(CheckSameShape(p.grad, p.value, slot.parameter.name + " grad", "value"));
    if (p.value.device().is_cuda()) {
      if (!run.empty() && run.front().value.device() != p.value.device()) {
        RETURN_IF_ERROR(flush(previous));
      }
      if (run.empty()) run_first = slot.parameter.name;
      run.push_back({.value = p.value,
                     .grad = p.grad,
                     .exp_avg = slot.exp_avg,
                     .exp_avg_sq = slot.exp_avg_sq,
                     .decay = p.decay});
      previous = slot.parameter.name;
      continue;
    }
    RETURN_IF_ERROR(flush(previous));
    optim_internal::AdamWUpdate(
        c, p.decay, p.value.numel(), static_cast<float*>(p.value.raw_data()),
        static_cast<const float*>(p.grad.raw_data()), static_cast<float*>(slot.exp_avg.raw_data()),
        static_cast<float*>(slot.exp_avg_sq.raw_data()));
  }
  RETURN_IF_ERROR(flush(previous));
  step_ = t;
  return absl::OkStatus();
}

absl::Status AdamW::AddToStateDict(StateDict& state, absl::string_view prefix) const {
  for (const Slot& slot : slots_) {
    const TensorParallelSplit& split = slot.parameter.parameter->split;
    RETURN_IF_ERROR(AddShardPieces(state, absl::StrCat(prefix, "exp_avg/", slot.parameter.name),
                                   slot.exp_avg, split));
    RETURN_IF_ERROR(AddShardPieces(state, absl::StrCat(prefix, "exp_avg_sq/", slot.parameter.name),
                                   slot.exp_avg_sq, split));
  }
  state.SetInt(absl::StrCat(prefix, "step"), step_);
  return absl::OkStatus();
}

absl::Status AdamW::RestoreStep(const StateDict& state, absl::string_view prefix) {
  ASSIGN_OR_RETURN(const int64_t step, state.GetInt(absl::StrCat(prefix, "step")));
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("AdamW: saved step ", step));
  step_ = step;
  return absl::OkStatus();
}

}  // namespace usine
