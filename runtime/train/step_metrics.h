// What a training step reports: the record the Trainer fills once per step (and once per
// evaluation), the one line rank 0 prints and the JSON object it appends to metrics.jsonl
// (metrics_log.h). The fields and their definitions are in docs/metrics.md.
//
//   StepMetrics m{.step = 120, .total_steps = 5000, .loss = 3.412, .lr = 6e-4, ...};
//   m.rates = ComputeStepRates(m.tokens, m.times.step, flops_per_token, peak_of_all_devices,
//                              step_energy);
//   std::puts(FormatStepLine(m).c_str());
//   // step 120/5000 | loss 3.412 | lr 6.0e-04 | 182k tok/s | MFU 41% | 512 W |
//   //   356 tok/s/W | data 0.2% comm 3% | eta 12m
//   RETURN_IF_ERROR(log->Append(m));
//
// A value that was not measured (no energy counter, no known peak, no ETA) is std::nullopt:
// the line shows "n/a" and the JSON null, never 0. Pure functions, safe from any thread.
#ifndef USINE_RUNTIME_TRAIN_STEP_METRICS_H_
#define USINE_RUNTIME_TRAIN_STEP_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

#include "runtime/train/energy.h"

namespace usine {

// Where a step's wall-clock time went, measured on the rank that reports (rank 0). The parts
// do not overlap; `step` is the whole step and at least their sum (the rest is bookkeeping).
struct StepTimes {
  absl::Duration data_wait;              // waiting for the next batch from DataStream
  absl::Duration forward;                // forward passes (every micro-step)
  absl::Duration backward;               // backward passes, overlapped communication included
  absl::Duration exposed_communication;  // waiting for collectives that did not overlap
  absl::Duration optimizer;              // gradient clipping and the optimizer's update
  absl::Duration checkpoint_stall;       // the step waiting for a checkpoint snapshot
  absl::Duration step;                   // the whole step
};

// The throughput of a step; see ComputeStepRates for the definitions.
struct StepRates {
  std::optional<double> tokens_per_second = std::nullopt;
  std::optional<double> mfu = std::nullopt;        // a fraction of the peak, e.g. 0.41
  std::optional<double> watts = std::nullopt;      // GPU + CPU packages, see energy.h
  std::optional<double> gpu_watts = std::nullopt;  // every rank's GPU
  std::optional<double> cpu_watts = std::nullopt;  // every node's CPU packages
  std::optional<double> tokens_per_second_per_watt = std::nullopt;  // = tokens per joule
  std::optional<double> joules_per_token = std::nullopt;
};

// `tokens` (all ranks) processed in `elapsed`:
//   tokens_per_second = tokens / elapsed
//   mfu = tokens_per_second * flops_per_token / peak_flops_per_second
//         (peak of all devices together; nullopt when the peak is unknown)
//   watts = joules / elapsed of every source in `energy` (EnergyReading::Total for `watts`);
//   tokens_per_second_per_watt = tokens / joules; joules_per_token = joules / tokens
// where `energy` is the job's energy over the same interval (EnergyReading::Since). Rates
// whose inputs are missing, or that would divide by zero, are nullopt.
StepRates ComputeStepRates(int64_t tokens, absl::Duration elapsed, double flops_per_token,
                           std::optional<double> peak_flops_per_second,
                           const EnergyReading& energy);

struct StepMetrics {
  int64_t step = 0;         // steps completed, this one included (from 1)
  int64_t total_steps = 0;  // 0: no fixed end (watch mode); the line then shows no total
  double loss = 0;          // mean training loss of the step over all ranks
  double lr = 0;            // the learning rate the update used
  std::optional<double> grad_norm = std::nullopt;  // global L2 norm before clipping
  int64_t tokens = 0;                              // tokens trained on in this step, all ranks
  bool skipped = false;                            // the update was skipped (non-finite gradients)
  int64_t skipped_steps = 0;  // updates skipped so far in the run, this one included
  StepTimes times;
  StepRates rates;
  std::optional<absl::Duration> eta = std::nullopt;  // time left to total_steps
};

// DESIGN.md's line: "step 120/5000 | loss 3.412 | lr 6.0e-04 | 182k tok/s | MFU 41% | 512 W
// | 356 tok/s/W | data 0.2% comm 3% | eta 12m", with " | skipped (N so far)" appended when
// the update was skipped. Missing values read "n/a".
std::string FormatStepLine(const StepMetrics& metrics);

// One JSON object on one line (no newline): {"kind":"train","step":120,...}; docs/metrics.md
// lists the fields. Durations are in seconds; missing values and non-finite numbers are null.
std::string StepMetricsJson(const StepMetrics& metrics);

// An evaluation on the held-out set after step `step`.
struct EvalMetrics {
  int64_t step = 0;
  double val_loss = 0;        // mean loss per token
  int64_t tokens = 0;         // tokens evaluated, all ranks
  double perplexity() const;  // exp(val_loss)
};

// "eval step 120 | val loss 3.301 | ppl 27.14 | 1.05M tokens".
std::string FormatEvalLine(const EvalMetrics& metrics);

// {"kind":"eval","step":120,"val_loss":3.301,"perplexity":27.14,"tokens":1048576}.
std::string EvalMetricsJson(const EvalMetrics& metrics);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_STEP_METRICS_H_
