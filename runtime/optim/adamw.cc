#include "runtime/optim/adamw.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/shard_boxes.h"
#include "runtime/optim/internal/adamw_update.h"

#if USINE_WITH_CUDA
#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/optim/internal/cuda_adamw.h"
#endif

namespace usine {
namespace {

// A CUDA parameter and its moments, for one update.
struct CudaUpdate {
  const NamedParameter* parameter;
  const Tensor* exp_avg;
  const Tensor* exp_avg_sq;
};

// The updates of `run` (CUDA parameters, all on `device`), on that device's default stream,
// kAdamWTensorsPerLaunch parameters a launch.
absl::Status CudaStep(const optim_internal::AdamWCoefficients& c, absl::Span<const CudaUpdate> run,
                      Device device) {
#if USINE_WITH_CUDA
  namespace oc = optim_internal::cuda;
  const oc::AdamWStep step{.lr = c.lr,
                           .beta1 = c.beta1,
                           .beta2 = c.beta2,
                           .eps = c.eps,
                           .decay = c.lr * c.weight_decay,
                           .correction1 = c.correction1,
                           .correction2 = c.correction2};
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device));
  oc::AdamWTensors launch;
  for (size_t i = 0; i < run.size(); ++i) {
    const Parameter& p = *run[i].parameter->parameter;
    launch.tensors[launch.count++] = {
        .grad = static_cast<const float*>(p.grad.raw_data()),
        .value = static_cast<float*>(p.value.raw_data()),
        .exp_avg = static_cast<float*>(run[i].exp_avg->raw_data()),
        .exp_avg_sq = static_cast<float*>(run[i].exp_avg_sq->raw_data()),
        .n = p.value.numel(),
        .decay = p.decay};
    if (launch.count == oc::kAdamWTensorsPerLaunch || i + 1 == run.size()) {
      RETURN_IF_ERROR(USINE_CUDA_STATUS(oc::LaunchAdamW(step, launch, /*stream=*/nullptr)));
      launch.count = 0;
    }
  }
  return absl::OkStatus();
#else
  return absl::FailedPreconditionError("AdamW: CUDA parameters need a build with CUDA");
#endif
}

}  // namespace

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

absl::Status AdamW::Step(double lr) {
  if (!(lr >= 0)) return absl::InvalidArgumentError(absl::StrCat("AdamW: learning rate ", lr));
  const int64_t t = step_ + 1;
  const optim_internal::AdamWCoefficients c = optim_internal::AdamWCoefficientsAt(options_, lr, t);
  if (!slots_.empty()) MarkOp("adamw", slots_.front().parameter.parameter->value.device());
  // CUDA parameters are updated in runs of consecutive ones on one device, many a launch.
  std::vector<CudaUpdate> run;
  const auto device_of = [](const CudaUpdate& u) { return u.parameter->parameter->value.device(); };
  const auto flush = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    absl::Status status = WithContext(CudaStep(c, run, device_of(run.front())),
                                      absl::StrCat("AdamW parameters ", run.front().parameter->name,
                                                   " to ", run.back().parameter->name));
    run.clear();
    return status;
  };
  for (Slot& slot : slots_) {
    const Parameter& p = *slot.parameter.parameter;
    RETURN_IF_ERROR(CheckSameShape(p.grad, p.value, slot.parameter.name + " grad", "value"));
    if (p.value.device().is_cuda()) {
      if (!run.empty() && device_of(run.front()) != p.value.device()) RETURN_IF_ERROR(flush());
      run.push_back({&slot.parameter, &slot.exp_avg, &slot.exp_avg_sq});
      continue;
    }
    RETURN_IF_ERROR(flush());
    optim_internal::AdamWUpdate(
        c, p.decay, p.value.numel(), static_cast<float*>(p.value.raw_data()),
        static_cast<const float*>(p.grad.raw_data()), static_cast<float*>(slot.exp_avg.raw_data()),
        static_cast<float*>(slot.exp_avg_sq.raw_data()));
  }
  RETURN_IF_ERROR(flush());
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
