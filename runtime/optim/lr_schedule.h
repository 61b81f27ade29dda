// The learning rate as a function of the step: a linear warmup, then a cosine or linear decay
// from max_lr to min_lr at total_steps, then min_lr.
//
//   const LrSchedule schedule{.max_lr = 6e-4, .min_lr = 6e-5, .warmup_steps = 700,
//                             .total_steps = 19000};
//   RETURN_IF_ERROR(schedule.Validate());
//   RETURN_IF_ERROR(optimizer->Step(schedule.At(step)));
#ifndef USINE_RUNTIME_OPTIM_LR_SCHEDULE_H_
#define USINE_RUNTIME_OPTIM_LR_SCHEDULE_H_

#include <cstdint>

#include "absl/status/status.h"

namespace usine {

enum class LrDecay { kCosine, kLinear };

struct LrSchedule {
  double max_lr = 6e-4;              // Default: 6e-4 (GPT-2 small's).
  double min_lr = 0.0;               // Reached at total_steps. Default: 0.
  int64_t warmup_steps = 0;          // Default: none.
  int64_t total_steps = 1;           // Warmup included.
  LrDecay decay = LrDecay::kCosine;  // Default: cosine.

  // OK when 0 <= min_lr <= max_lr and 0 <= warmup_steps <= total_steps, total_steps >= 1;
  // otherwise InvalidArgument naming the field.
  [[nodiscard]] absl::Status Validate() const;

  // Step s (from 0): max_lr * (s + 1) / warmup_steps during the warmup; then, with progress
  // p = (s - warmup_steps) / (total_steps - warmup_steps) capped at 1, min_lr + (max_lr -
  // min_lr) * (1 + cos(pi p)) / 2 (cosine) or * (1 - p) (linear).
  double At(int64_t step) const;
};

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_LR_SCHEDULE_H_
