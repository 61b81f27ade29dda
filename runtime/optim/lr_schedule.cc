#include "runtime/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"

namespace usine {

absl::Status LrSchedule::Validate() const {
  if (!(min_lr >= 0 && min_lr <= max_lr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LrSchedule: need 0 <= min_lr <= max_lr, got ", min_lr, " and ", max_lr));
  }
  if (total_steps < 1 || warmup_steps < 0 || warmup_steps > total_steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("LrSchedule: need 0 <= warmup_steps <= total_steps and total_steps >= 1, got ",
                     warmup_steps, " and ", total_steps));
  }
  return absl::OkStatus();
}

double LrSchedule::At(int64_t step) const {
  if (step < warmup_steps) {
    return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const int64_t decay_steps = total_steps - warmup_steps;
  const double progress = decay_steps == 0
                              ? 1.0
                              : std::min(1.0, static_cast<double>(step - warmup_steps) /
                                                  static_cast<double>(decay_steps));
  const double fraction = decay == LrDecay::kCosine
                              ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress))
                              : 1.0 - progress;
  return min_lr + (max_lr - min_lr) * fraction;
}

}  // namespace usine
