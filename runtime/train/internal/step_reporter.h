// The Trainer's metrics: each logged step becomes a StepMetrics record (step_metrics.h) with
// tokens/s, MFU and the job's energy, printed as one line and appended to metrics.jsonl by
// rank 0; evaluations likewise.
//
// Create and Report are collectives over `world` (the energy is summed over the ranks): every
// rank calls them for the same steps; ReportEval writes on rank 0 and communicates nothing.
// Not thread-safe.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_STEP_REPORTER_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_STEP_REPORTER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/train/energy.h"
#include "runtime/train/metrics_log.h"
#include "runtime/train/trainer.h"

namespace usine::train_internal {

class StepReporter {
 public:
  // `flops_per_token`: the model's training FLOPs per token (> 0). Measures or looks up the
  // device's peak (on the cpu, rank 0 runs a short sgemm) and starts the energy meter.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StepReporter>> Create(
      Communicator& world, Device device, const std::string& run_dir,
      const TrainerMetricsOptions& options, double flops_per_token);

  // Logs `step` when it is due (every options.log_every steps, and the last one).
  [[nodiscard]] absl::Status Report(const StepReport& step, bool last);
  [[nodiscard]] absl::Status ReportEval(const EvalReport& eval, int64_t tokens);

 private:
  StepReporter(Communicator& world, const TrainerMetricsOptions& options)
      : world_(world), options_(options) {}

  Communicator& world_;
  TrainerMetricsOptions options_;
  double flops_per_token_ = 0;
  std::optional<double> peak_flops_;  // Of all the job's devices together.
  std::unique_ptr<EnergyMeter> energy_;
  std::unique_ptr<MetricsLog> log_;  // Rank 0.
  // Since the last logged step: the energy then, and the steps and time in between.
  EnergyReading last_energy_;
  int64_t steps_since_ = 0;
  int64_t tokens_since_ = 0;
  absl::Duration time_since_;
  TrainStepTimes times_since_;
  absl::Duration data_since_, stall_since_;
  std::optional<double> mean_step_seconds_;  // Exponential average, for the ETA.
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_STEP_REPORTER_H_
