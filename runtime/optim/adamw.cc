#include "runtime/optim/adamw.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/optim/internal/adamw_update.h"

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
  auto adamw = std::unique_ptr<AdamW>(new AdamW(options));
  for (NamedParameter& p : parameters) {
    const std::string what = absl::StrCat("AdamW parameter ", p.name);
    RETURN_IF_ERROR(CheckDType(p.parameter->value, DType::kF32, what));
    RETURN_IF_ERROR(CheckDevice(p.parameter->value, Device::Cpu(), what));
    Slot slot{.parameter = std::move(p), .exp_avg = Tensor(), .exp_avg_sq = Tensor()};
    const Shape& shape = slot.parameter.parameter->value.shape();
    ASSIGN_OR_RETURN(slot.exp_avg, Tensor::Empty(shape, DType::kF32));
    ASSIGN_OR_RETURN(slot.exp_avg_sq, Tensor::Empty(shape, DType::kF32));
    RETURN_IF_ERROR(Fill(slot.exp_avg, 0.0));
    RETURN_IF_ERROR(Fill(slot.exp_avg_sq, 0.0));
    adamw->slots_.push_back(std::move(slot));
  }
  return adamw;
}

absl::Status AdamW::Step(double lr) {
  if (!(lr >= 0)) return absl::InvalidArgumentError(absl::StrCat("AdamW: learning rate ", lr));
  const int64_t t = step_ + 1;
  const optim_internal::AdamWCoefficients c = optim_internal::AdamWCoefficientsAt(options_, lr, t);
  for (Slot& slot : slots_) {
    const Parameter& p = *slot.parameter.parameter;
    RETURN_IF_ERROR(CheckSameShape(p.grad, p.value, slot.parameter.name + " grad", "value"));
    optim_internal::AdamWUpdate(
        c, p.decay, p.value.numel(), static_cast<float*>(p.value.raw_data()),
        static_cast<const float*>(p.grad.raw_data()), static_cast<float*>(slot.exp_avg.raw_data()),
        static_cast<float*>(slot.exp_avg_sq.raw_data()));
  }
  step_ = t;
  return absl::OkStatus();
}

absl::Status AdamW::AddToStateDict(StateDict& state, absl::string_view prefix) const {
  for (const Slot& slot : slots_) {
    const Shape flat{slot.exp_avg.numel()};
    ASSIGN_OR_RETURN(Tensor exp_avg, slot.exp_avg.Reshape(flat));
    ASSIGN_OR_RETURN(Tensor exp_avg_sq, slot.exp_avg_sq.Reshape(flat));
    RETURN_IF_ERROR(
        state.AddTensor(absl::StrCat(prefix, "exp_avg/", slot.parameter.name), exp_avg));
    RETURN_IF_ERROR(
        state.AddTensor(absl::StrCat(prefix, "exp_avg_sq/", slot.parameter.name), exp_avg_sq));
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
