// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW): Adam with weight decay decoupled
// from the gradient, applied only to parameters with `decay` set (not to biases and LayerNorm
// parameters, see nn/module.h). For each parameter p with gradient g, at step t (from 1):
//
//   p <- p - lr * weight_decay * p                      (decay parameters only)
//   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
//   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//
// computed in double per element, stored in f32, on the parameter's device (the CUDA kernel
// rounds each operation as the cpu does, so both give the same bits). The moments m and v are
// f32 tensors on that device, one pair per parameter of the parameter's shape, exposed for
// checkpoints as StateDict entries in the parameter's logical shape (see AddToStateDict).
// ZeroAdamW (zero_adamw.h) is the same update with the moments sharded over the data-parallel
// ranks; the two write the same checkpoint entries.
//
//   ASSIGN_OR_RETURN(auto optimizer, AdamW::Create(model->Parameters(), {.weight_decay = 0.1}));
//   ASSIGN_OR_RETURN(double norm, ClipGradientNorm(model->Parameters(), 0));  // grad_clip.h
//   RETURN_IF_ERROR(optimizer->Step(schedule.At(step), ClipFactor(norm, 1.0)));  // lr_schedule.h
//   RETURN_IF_ERROR(optimizer->AddToStateDict(state));     // "optim/exp_avg/<name>", ...
//   ... a checkpoint load fills the moments in place, then:
//   RETURN_IF_ERROR(optimizer->RestoreStep(state));
//
// Thread-compatible. The parameters must outlive the optimizer.
#ifndef USINE_RUNTIME_OPTIM_ADAMW_H_
#define USINE_RUNTIME_OPTIM_ADAMW_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "checkpoint/state_dict.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

struct AdamWOptions {
  double beta1 = 0.9;         // Default: 0.9.
  double beta2 = 0.95;        // Default: 0.95 (GPT-2/3 training's).
  double eps = 1e-8;          // Default: 1e-8.
  double weight_decay = 0.1;  // Default: 0.1; only on parameters with `decay`.

  // OK when 0 <= beta1, beta2 < 1, eps > 0 and weight_decay >= 0; otherwise InvalidArgument
  // naming the values.
  [[nodiscard]] absl::Status Validate() const;
};

class AdamW {
 public:
  // Zero moments for each parameter. REQUIRES (checked): f32 parameters, on the cpu or a CUDA
  // device, 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdamW>> Create(
      std::vector<NamedParameter> parameters, const AdamWOptions& options = {});

  // One update from the current gradients times `grad_scale` (each element rounded to f32, as
  // ScaleGradients would leave it: gradient clipping's factor, grad_clip.h, without a pass of
  // its own) with learning rate `lr`; then step() grows by one. The gradients are left as they
  // are. InvalidArgument for lr < 0 or a grad_scale that is negative or not finite. CUDA
  // parameters are updated on their device's default stream; the call does not wait.
  [[nodiscard]] absl::Status Step(double lr, float grad_scale = 1.0f);

  // Updates made so far (t of the last update).
  int64_t step() const { return step_; }

  // Adds "<prefix>exp_avg/<name>" and "<prefix>exp_avg_sq/<name>" (the moments, as handles:
  // a checkpoint load fills them in place) and the int "<prefix>step". Each moment is a tensor
  // of its parameter's logical shape with the parameter's boxes (Module::AddToStateDict: a
  // tensor-parallel shard adds its pieces of the whole), so a checkpoint loads at another
  // tensor-parallel size; ZeroAdamW adds the same entries (its pieces are boxes of the same
  // tensors), so a checkpoint of either loads into the other at any data-parallel size.
  [[nodiscard]] absl::Status AddToStateDict(StateDict& state,
                                            absl::string_view prefix = "optim/") const;
  // Reads "<prefix>step" back after a checkpoint load filled the moments.
  [[nodiscard]] absl::Status RestoreStep(const StateDict& state,
                                         absl::string_view prefix = "optim/");

 private:
  struct Slot {
    NamedParameter parameter;
    Tensor exp_avg;
    Tensor exp_avg_sq;
  };
  explicit AdamW(const AdamWOptions& options) : options_(options) {}

  AdamWOptions options_;
  std::vector<Slot> slots_;
  int64_t step_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_ADAMW_H_
