// Energy from power samples, for a GPU whose NVML has no energy counter: the trapezoid rule
// over the samples, each a power in watts at a time on a monotonic clock.
//
//   PowerIntegrator energy;
//   energy.Add(absl::Seconds(0), 300);
//   energy.Add(absl::Seconds(2), 500);   // energy.joules() == 800
//
// Thread-compatible.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_POWER_INTEGRATOR_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_POWER_INTEGRATOR_H_

#include <optional>

#include "absl/time/time.h"

namespace usine::train_internal {

class PowerIntegrator {
 public:
  // Adds the sample `watts` taken at `at`; the first sample starts the integral (0 J).
  // REQUIRES: `at` is not before the previous sample's.
  void Add(absl::Duration at, double watts) {
    if (last_.has_value()) {
      joules_ += 0.5 * (last_->watts + watts) * absl::ToDoubleSeconds(at - last_->at);
    }
    last_ = Sample{at, watts};
  }
  double joules() const { return joules_; }

 private:
  struct Sample {
    absl::Duration at;
    double watts;
  };
  std::optional<Sample> last_;
  double joules_ = 0;
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_POWER_INTEGRATOR_H_
