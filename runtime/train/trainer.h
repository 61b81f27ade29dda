// The training loop of a TokenModel (nn/token_model.h), data- and tensor-parallel: batches from
// a DataStream, gradient accumulation, the data-parallel reduction overlapped with backward
// (data_parallel.h) or ZeRO-1 (optim/zero_adamw.h), clipping, AdamW on a warmup-then-decay
// schedule, evaluation on the validation split, asynchronous HDF5 checkpoints with automatic
// resume, budgets, stop signals, and one metrics line and record per step (rank 0 prints the
// line and appends the record to run_dir/metrics.jsonl; TrainerMetricsOptions).
//
//   ASSIGN_OR_RETURN(auto world, World::Init());
//   ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(world->comm(), /*tp_size=*/2));
//   ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = config, .seed = 1337,
//                                             .tp = &grid->comm(ParallelAxis::kTensor)}));
//   ASSIGN_OR_RETURN(auto trainer, Trainer::Create(*grid, *model, options));
//   ASSIGN_OR_RETURN(TrainOutcome outcome, trainer->Run());
//   return outcome.exit_code();    // kExitRequeue after SIGTERM/SIGUSR1
//
// Resume: with `resume` set, Create loads the run directory's `latest` checkpoint, if there
// is one, into the model, the optimizer and the data position (any TP/DP layout the
// checkpoint files allow: checkpoint/state_dict.h); the run then continues exactly where that
// one stopped (on the cpu the losses repeat bit for bit).
//
// Watch mode (train_data.watch set): the stream gets a communicator of its own, split from the
// world. The run may then have no budget: it goes on, training on the shards as they land,
// until a stop signal. A signal that arrives while the stream waits for a shard closes the
// stream at once (on that rank; the others follow, data_stream.h); after fetching a step's
// micro-batches the ranks agree that every rank has all of them (one more small all-reduce
// per step), and a step that some rank could not fetch is not taken: the checkpoint holds
// the data position of the step boundary before it, so that no sample is lost or repeated.
//
// Starting point (init_from): when there is no checkpoint to resume, the model's tensors
// ("model/" entries) are loaded from a checkpoint file, a published model or a checkpoint
// directory's `latest`, at any TP layout; the optimizer starts fresh at step 0.
//
// Publishing (publish_dir): before the first step the starting model is evaluated (its
// validation loss is the baseline); after every evaluation, when the validation loss is
// below the best so far, the model is written to publish_dir/model-vNNNN.h5 (version 1, 2,
// ...; Checkpointer::SaveAs, atomic): its "model/" tensors and the metadata version, step,
// tokens_seen, val_loss, model_config and run_config. It loads like any checkpoint file. The
// best loss and the last version are in every checkpoint ("best_val_loss",
// "published_version"): a resumed run keeps the bar and the numbering.
//
// Agreement: every decision that must be the same everywhere is taken together at each step
// boundary (one small all-reduce over the world): a stop signal on any rank, a checkpoint
// due by the clock, the time budget (rank 0's clock), and whether some rank's own work failed
// since (rank 0's metrics log: every rank then ends the run with that error, "rank 0: ...").
// Local failures in Create (directories, the metrics log, the data) are agreed on likewise,
// so that no rank waits in a collective for one that has failed. A non-finite loss or gradient norm
// skips the step on every rank (train_step.h); `max_bad_steps` in a row end the run with an error.
//
// Create and Run are collectives over the grid's world: every rank calls them. Not
// thread-safe. The grid and the model must outlive the trainer.
#ifndef USINE_RUNTIME_TRAIN_TRAINER_H_
#define USINE_RUNTIME_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "checkpoint/checkpoint_directory.h"
#include "collectives/process_grid.h"
#include "runtime/data/data_stream.h"
#include "runtime/nn/token_model.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/train/flops.h"
#include "runtime/train/train_step.h"

namespace usine {

// The exit code of a run stopped by SIGTERM or SIGUSR1 after its checkpoint: EX_TEMPFAIL
// (sysexits.h), "try again later" -- what scripts/slurm/train.sbatch requeues on.
inline constexpr int kExitRequeue = 75;

// One step, as every rank sees it (loss and norm are the same everywhere).
struct StepReport {
  int64_t step = 0;  // Steps done, this one included.
  int64_t max_steps = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  bool skipped = false;
  int64_t skipped_total = 0;
  int64_t tokens = 0;       // This step's, over all DP ranks.
  int64_t tokens_seen = 0;  // Since the first step of the run (resumes included).
  absl::Duration data_wait;
  TrainStepTimes times;
  // Save()'s snapshot, when the step boundary before this step checkpointed.
  absl::Duration checkpoint_stall;
  // Wall time from that boundary (its agreement and checkpoint included) to the step's end.
  absl::Duration step_time;
};

struct EvalReport {
  int64_t step = 0;
  double loss = 0;  // Mean over the evaluated tokens of every DP rank.
  int64_t batches = 0;
};

// The per-step line and metrics.jsonl record (step_metrics.h, docs/metrics.md).
struct TrainerMetricsOptions {
  int64_t log_every = 1;  // Steps between lines and records (the last step always); 0: none.
  // The model's training FLOPs per token, for MFU. 0: 6 x its parameter count.
  double flops_per_token = 0;
  // The peak FLOP/s of one device; default: NVIDIA's table for the GPU, the measured sgemm
  // rate on the cpu (flops.h).
  std::optional<double> peak_flops;
  MatmulPrecision precision = MatmulPrecision::kF32;  // The peak's precision.
  bool energy = true;  // Measure GPU (NVML) and CPU (RAPL) energy where readable.
};

struct TrainerOptions {
  // The run directory: checkpoints/ (the Checkpointer's), metrics.jsonl and config.toml.
  // Created when missing. Required.
  std::string run_dir;

  // Training data: the shards, seq_len, seed, shuffle and prefetch are used; batch_size is
  // the micro-batch (sequences per rank per forward); dp_rank and dp_size are set here.
  DataStreamOptions train_data;
  // Validation shards (evaluated in order, not shuffled, split over the DP ranks). Empty: no
  // evaluation.
  std::vector<std::string> val_shards;

  // Sequences per optimizer step over all DP ranks. REQUIRES: a multiple of
  // dp_size * train_data.batch_size; the quotient is the number of micro-batches per step.
  int64_t global_batch = 0;

  AdamWOptions adamw;
  bool zero = false;  // ZeRO-1: the optimizer state sharded over the DP ranks.
  LrSchedule schedule;
  double max_grad_norm = 1.0;  // <= 0: no clipping.

  // Budgets: the run ends at whichever comes first; 0 means none. At least one is required,
  // except in watch mode, where a run without one ends only at a stop signal.
  int64_t max_steps = 0;
  int64_t max_tokens = 0;
  absl::Duration max_time = absl::ZeroDuration();

  int64_t eval_every = 0;    // Steps between evaluations; 0: never.
  int64_t eval_batches = 0;  // Micro-batches per rank per evaluation; 0: the whole split.

  int max_bad_steps = 5;  // Non-finite steps in a row that end the run.

  // Checkpoints every `checkpoint_every_steps` steps and/or every `checkpoint_every` of wall
  // time (0: never by that rule), and at the end of the run or at a stop signal.
  int64_t checkpoint_every_steps = 0;
  absl::Duration checkpoint_every = absl::ZeroDuration();
  RetentionPolicy retention;
  bool resume = true;          // Continue from run_dir's latest checkpoint when there is one.
  bool verify_on_load = true;  // Check the checkpoint's CRC-32Cs when resuming.
  // The model to start from when there is no checkpoint to resume (see above): a checkpoint
  // file, or a checkpoint directory (its `latest`). Empty: the model as given.
  std::string init_from;
  // Where models are published (see above); created when missing. REQUIRES: val_shards and
  // eval_every > 0. Empty: nothing is published.
  std::string publish_dir;

  // Written to run_dir/config.toml (rank 0) and into every checkpoint ("run_config"): the
  // effective configuration of the run, as the caller describes it. May be empty.
  std::string config_text;
  // The model's configuration as JSON, for readers of the checkpoints ("model_config";
  // scripts/export_to_torch.py reads Gpt's). May be empty.
  std::string model_config_json;
  uint64_t seed = 0;  // Recorded in checkpoints ("seed").

  TrainerMetricsOptions metrics;

  // Called on every rank after every step (skipped ones included), and after evaluations.
  std::function<void(const StepReport&)> on_step;
  std::function<void(const EvalReport&)> on_eval;
};

enum class StopReason { kBudget, kSignal };

struct TrainOutcome {
  StopReason reason = StopReason::kBudget;
  int64_t step = 0;
  int64_t tokens_seen = 0;
  int64_t skipped_steps = 0;
  double last_loss = 0;
  int signal = 0;  // With kSignal.
  // 0 for a finished budget, kExitRequeue after a stop signal.
  int exit_code() const { return reason == StopReason::kSignal ? kExitRequeue : 0; }
};

class Trainer {
 public:
  // Validates the options, builds the optimizer (AdamW with a gradient reducer over the DP
  // group, or ZeroAdamW), the checkpointer and the data stream, and resumes from the latest
  // checkpoint (see above). Errors name the option or the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Trainer>> Create(ProcessGrid& grid,
                                                                       TokenModel& model,
                                                                       TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains until a budget is reached or a stop signal arrives, checkpointing on the way and at
  // the end. An error (a failed collective, `max_bad_steps` non-finite steps in a row, a failed
  // save) ends it; the last committed checkpoint stays loadable.
  [[nodiscard]] absl::StatusOr<TrainOutcome> Run();

  // The step the run starts from (after a resume: the checkpoint's).
  int64_t start_step() const;

 private:
  class Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_TRAINER_H_
