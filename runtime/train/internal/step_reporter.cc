#include "runtime/train/internal/step_reporter.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "collectives/byte_exchange.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/flops.h"
#include "runtime/train/step_metrics.h"

namespace usine::train_internal {
namespace {

// The devices the job computes on: every rank's GPU, or on the cpu each machine once (the
// ranks of a machine share its cores, whose rate the sgemm measures).
absl::StatusOr<int> DeviceCount(Communicator& world, Device device) {
  if (device.is_cuda()) return world.size();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  ASSIGN_OR_RETURN(std::vector<std::string> hosts, AllGatherBytes(world, host));
  return static_cast<int>(std::set<std::string>(hosts.begin(), hosts.end()).size());
}

}  // namespace

absl::StatusOr<std::unique_ptr<StepReporter>> StepReporter::Create(
    Communicator& world, Device device, const std::string& run_dir,
    const TrainerMetricsOptions& options, double flops_per_token) {
  auto r = std::unique_ptr<StepReporter>(new StepReporter(world, options));
  r->flops_per_token_ = flops_per_token;
  ASSIGN_OR_RETURN(const int devices, DeviceCount(world, device));
  if (options.energy) {
    ASSIGN_OR_RETURN(const EnergyMeterOptions sources, AssignEnergySources(world, device));
    r->energy_ = EnergyMeter::Start(sources);
    ASSIGN_OR_RETURN(r->last_energy_, SumEnergyOverRanks(world, r->energy_->Read()));
  }
  if (world.rank() != 0) return r;
  ASSIGN_OR_RETURN(const PeakFlops peak,
                   DevicePeakFlops(device, {.override_flops_per_second = options.peak_flops,
                                            .precision = options.precision}));
  if (peak.flops_per_second) r->peak_flops_ = *peak.flops_per_second * devices;
  USINE_LOG(INFO) << "MFU against " << devices << " x " << peak.source << "; energy: "
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
