#include "runtime/train/internal/step_reporter.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/flops.h"
#include "runtime/train/step_metrics.h"
#include "runtime/train/train_step.h"

namespace usine::train_internal {
namespace {

// The peak FLOP/s of the whole job. GPUs: the table's (or the override) times the ranks.
// The cpu: every rank measures sgemm at the same time and the rates are added up, so that
// ranks sharing a machine's cores share its rate, as they do when training.
absl::StatusOr<PeakFlops> JobPeakFlops(Communicator& world, Device device,
                                       const TrainerMetricsOptions& options) {
  const PeakFlopsOptions peak_options{.override_flops_per_second = options.peak_flops,
                                      .precision = options.precision};
  if (device.is_cuda() || options.peak_flops) {
    if (world.rank() != 0) return PeakFlops{};
    ASSIGN_OR_RETURN(PeakFlops peak, DevicePeakFlops(device, peak_options));
    if (peak.flops_per_second) *peak.flops_per_second *= world.size();
    peak.source = absl::StrCat(world.size(), " x ", peak.source);
    return peak;
  }
  RETURN_IF_ERROR(world.Barrier());  // Measured together.
  ASSIGN_OR_RETURN(PeakFlops mine, DevicePeakFlops(device, peak_options));
  ASSIGN_OR_RETURN(const double mean, AverageOverRanks(&world, mine.flops_per_second.value_or(0)));
  PeakFlops peak{.flops_per_second = mean * world.size(),
                 .source = absl::StrCat(world.size(), " ranks measuring at once: ", mine.source)};
  if (!(mean > 0)) peak.flops_per_second.reset();
  return peak;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StepReporter>> StepReporter::Create(
    Communicator& world, Device device, const std::string& run_dir,
    const TrainerMetricsOptions& options, double flops_per_token) {
  auto r = std::unique_ptr<StepReporter>(new StepReporter(world, options));
  r->flops_per_token_ = flops_per_token;
  if (options.energy) {
    ASSIGN_OR_RETURN(const EnergyMeterOptions sources, AssignEnergySources(world, device));
    r->energy_ = EnergyMeter::Start(sources);
    ASSIGN_OR_RETURN(r->last_energy_, SumEnergyOverRanks(world, r->energy_->Read()));
  }
  ASSIGN_OR_RETURN(const PeakFlops peak, JobPeakFlops(world, device, options));
  if (world.rank() != 0) return r;
  r->peak_flops_ = peak.flops_per_second;
  USINE_LOG(INFO) << "MFU against " << peak.source << "; energy: "
                  << (r->energy_ != nullptr ? r->energy_->Describe() : "not measured");
  ASSIGN_OR_RETURN(r->log_, MetricsLog::Open(run_dir));
  return r;
}

absl::Status StepReporter::Report(const StepReport& step, bool last) {
  ++steps_since_;
  tokens_since_ += step.tokens;
  time_since_ += step.step_time;
  data_since_ += step.data_wait;
  stall_since_ += step.checkpoint_stall;
  times_since_.forward += step.times.forward;
  times_since_.backward += step.times.backward;
  times_since_.communication += step.times.communication;
  times_since_.optimizer += step.times.optimizer;
  const double seconds = absl::ToDoubleSeconds(step.step_time);
  mean_step_seconds_ = mean_step_seconds_ ? 0.9 * *mean_step_seconds_ + 0.1 * seconds : seconds;
  const bool due = options_.log_every > 0 && (last || step.step % options_.log_every == 0);
  if (!due) return absl::OkStatus();

  EnergyReading energy;  // Over the logged interval; unavailable without a meter.
  if (energy_ != nullptr) {
    ASSIGN_OR_RETURN(const EnergyReading now, SumEnergyOverRanks(world_, energy_->Read()));
    energy = now.Since(last_energy_);
    last_energy_ = now;
  }
  if (world_.rank() == 0) {
    const double n = static_cast<double>(steps_since_);
    StepMetrics m{.step = step.step,
                  .total_steps = step.max_steps,
                  .loss = step.loss,
                  .lr = step.lr,
                  .grad_norm = std::isfinite(step.grad_norm) ? std::optional<double>(step.grad_norm)
                                                             : std::nullopt,
                  .tokens = step.tokens,
                  .skipped = step.skipped,
                  .skipped_steps = step.skipped_total,
                  .times = {.data_wait = data_since_ / n,
                            .forward = times_since_.forward / n,
                            .backward = times_since_.backward / n,
                            .exposed_communication = times_since_.communication / n,
                            .optimizer = times_since_.optimizer / n,
                            .checkpoint_stall = stall_since_ / n,
                            .step = time_since_ / n},
                  .rates = ComputeStepRates(tokens_since_, time_since_, flops_per_token_,
                                            peak_flops_, energy)};
    if (step.max_steps > 0 && mean_step_seconds_) {
      m.eta = absl::Seconds(*mean_step_seconds_ * static_cast<double>(step.max_steps - step.step));
    }
    std::printf("%s\n", FormatStepLine(m).c_str());
    std::fflush(stdout);
    RETURN_IF_ERROR(log_->Append(m));
  }
  steps_since_ = tokens_since_ = 0;
  time_since_ = data_since_ = stall_since_ = absl::ZeroDuration();
  times_since_ = {};
  return absl::OkStatus();
}

absl::Status StepReporter::ReportEval(const EvalReport& eval, int64_t tokens) {
  if (world_.rank() != 0) return absl::OkStatus();
  const EvalMetrics m{.step = eval.step, .val_loss = eval.loss, .tokens = tokens};
  std::printf("%s\n", FormatEvalLine(m).c_str());
  std::fflush(stdout);
  return log_->Append(m);
}

}  // namespace usine::train_internal
