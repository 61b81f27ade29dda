// The configuration of a training run (`usine train --config run.toml --set optim.lr=3e-4`):
// a TOML file in eight sections -- [run], [model], [parallel], [data], [optim], [train],
// [checkpoint], [logging] -- every key optional with the default written next to it below,
// and `key=value` overrides applied after the file. docs/config.md documents the keys too.
//
//   ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig("run.toml", {"optim.lr=3e-4"}));
//   ASSIGN_OR_RETURN(RunLayout layout, ResolveLayout(config, world.size()));
//   ASSIGN_OR_RETURN(GptConfig model, ResolveGptConfig(config));
//   ... write ToToml(config) to the run directory and into every checkpoint ...
//
// Errors name the source and the dotted key: "run.toml:12:1: unknown key "optim.lrr" (did you
// mean "optim.lr"?)", "run.toml:4:9: optim.beta1 = 1.5 is out of range: must be in [0, 1)",
// "--set optim.lr=fast: optim.lr: expected a number, got the string "fast"". A TOML syntax
// error names file:line:column. Validate() checks the rules that span keys.
//
// Plain values; the functions are thread-safe (they share no state).
#ifndef USINE_RUNTIME_TRAIN_RUN_CONFIG_H_
#define USINE_RUNTIME_TRAIN_RUN_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "checkpoint/checkpoint_directory.h"
#include "runtime/core/device.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/gpt_config.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lr_schedule.h"

namespace usine {

// [run]
struct RunSection {
  // The run directory: metrics.jsonl, the effective configuration and checkpoints/.
  // Not empty. Default: "run".
  std::string dir = "run";
  // Seeds the initial weights and the data order. 0 to 2^63 - 1. Default: 1337.
  int64_t seed = 1337;
  bool operator==(const RunSection&) const = default;
};

// [model]
struct ModelSection {
  enum class Attention { kUnfused, kFlash };

  // "tiny", "gpt2", "gpt2-medium", "gpt2-large" or "gpt2-xl" (nn/gpt_config.h). Default: "gpt2".
  std::string preset = "gpt2";
  // Each replaces the preset's value when set (TOML has no null: leave the key out to keep
  // the preset's). Each >= 1; vocab_size <= 2^31 and block_size <= 2^24. Default: unset.
  std::optional<int64_t> n_layer;
  std::optional<int64_t> n_head;
  std::optional<int64_t> n_embd;
  std::optional<int64_t> block_size;
  std::optional<int64_t> vocab_size;
  // "cpu" or "cuda" (each rank takes the GPU of its local rank). Default: "cpu".
  DeviceType device = DeviceType::kCpu;
  // Blocks keep only their input and recompute their activations in backward. Default: false.
  bool recompute = false;
  // What the matrix products compute in (SetF32MatmulPrecision, runtime/kernels/matmul.h):
  // "f32"; "tf32" (CUDA's tensor cores; the cpu computes in f32); "bf16" (operands rounded to
  // bf16, products accumulated in f32: CUDA's bf16 tensor cores; on the cpu an emulation,
  // slower than f32). Parameters, gradients and optimizer state stay f32. Default: "f32".
  MatmulPrecision matmul_precision = MatmulPrecision::kF32;
  // "unfused" (the attention matrix in memory) or "flash" (the fused CUDA kernel of
  // nn/attention.h; needs device "cuda" and n_embd / n_head <= 128). Default: "unfused".
  Attention attention = Attention::kUnfused;
  bool operator==(const ModelSection&) const = default;
};

// [parallel]
struct ParallelSection {
  // Tensor-parallel ranks per model replica; the data-parallel size is world size / tp.
  // 1 to 65536, dividing the world size, model.n_head and the padded vocabulary. Default: 1.
  int64_t tp = 1;
  // ZeRO-1: the optimizer state sharded over the data-parallel ranks. Default: false.
  bool zero = false;
  bool operator==(const ParallelSection&) const = default;
};

// [data]
struct DataSection {
  // A `usine prep` output directory (manifest.json with its train and val shards). Not
  // empty. Default: "data/brown" (scripts/get-sample-data.sh).
  std::string dir = "data/brown";
  // Tokens per sequence. 1 to model.block_size. Default: 1024.
  int64_t seq_len = 1024;
  // Sequences per optimizer step, over all data-parallel ranks. 1 to 2^31. Default: 8.
  int64_t batch_size = 8;
  // Sequences per rank per forward pass; batch_size / (dp * micro_batch_size) forwards are
  // accumulated per step, which must divide. 0: batch_size / dp (no accumulation). 0 to
  // batch_size. Default: 0.
  int64_t micro_batch_size = 0;
  // A seeded random order of shards and sequences (else file order). Default: true.
  bool shuffle = true;
  // Batches read ahead by a background thread. 1 to 63. Default: 4.
  int64_t prefetch = 4;
  // Continuous fine-tuning: a directory whose new shards are trained on as they land
  // (data/directory_watcher.h). "": off. Default: "".
  std::string watch;
  // With `watch`, the share of each batch replayed from `dir`. 0 <= r < 1. Default: 0.
  double replay_ratio = 0;
  // With `watch`, while no new shard is ready: train on base samples from `dir` (true) or
  // wait for the next shard (false). Default: false.
  bool replay_when_idle = false;
  bool operator==(const DataSection&) const = default;
};

// [optim] AdamW (optim/adamw.h), clipping (optim/grad_clip.h) and the learning-rate schedule
// (optim/lr_schedule.h), with their defaults.
struct OptimSection {
  double lr = 6e-4;                  // The peak learning rate. > 0. Default: 6e-4.
  double min_lr = 0;                 // Reached at the end of the schedule. 0 to lr. Default: 0.
  double beta1 = 0.9;                // 0 <= beta1 < 1. Default: 0.9.
  double beta2 = 0.95;               // 0 <= beta2 < 1. Default: 0.95.
  double eps = 1e-8;                 // > 0. Default: 1e-8.
  double weight_decay = 0.1;         // >= 0; weights only, not biases or LayerNorm. Default: 0.1.
  double max_grad_norm = 1.0;        // Global-norm clipping; 0: none (only measured). Default: 1.
  int64_t warmup_steps = 0;          // Linear warmup steps. 0 to the schedule's. Default: 0.
  LrDecay decay = LrDecay::kCosine;  // "cosine" or "linear". Default: "cosine".
  bool operator==(const OptimSection&) const = default;
};

// [train] When to stop (the first limit reached; at least one must be set, except with
// data.watch: a run that watches for data may go on until SIGTERM/SIGUSR1), evaluate and
// publish.
struct TrainSection {
  int64_t max_steps = 0;  // Optimizer steps. 0: no limit. Default: 0.
  // Training tokens (steps * batch_size * seq_len); 0: no limit. Default: 0.
  int64_t max_tokens = 0;
  double max_minutes = 0;    // Wall-clock minutes of this launch. 0: no limit. Default: 0.
  int64_t eval_every = 250;  // Steps between validation-loss evaluations; 0: never. Default: 250.
  // Validation micro-batches per rank per evaluation; 0: the whole split. Default: 20.
  int64_t eval_batches = 20;
  // Non-finite losses in a row (each step skipped) that stop the run with an error. >= 1.
  // Default: 5 (TrainerOptions').
  int64_t max_bad_steps = 5;
  // Where the model is published, as model-vNNNN.h5, after each evaluation whose validation
  // loss beats the best so far (the starting model's at first; TrainerOptions::publish_dir).
  // Needs eval_every > 0. "": off. Default: "".
  std::string publish_dir;
  bool operator==(const TrainSection&) const = default;
};

// [checkpoint] checkpoint/checkpoint_directory.h and checkpointer.h.
struct CheckpointSection {
  int64_t every_steps = 1000;  // Steps between checkpoints; 0: never. Default: 1000.
  double every_minutes = 0;    // Minutes between checkpoints; 0: never. Default: 0.
  int64_t keep_last = 3;       // The newest checkpoints kept. >= 1. Default: 3.
  int64_t keep_every = 0;      // Steps that are multiples of it are kept; 0: none. Default: 0.
  // Continue from the run directory's `latest` checkpoint when there is one. Default: true.
  bool resume = true;
  // Check every tensor's CRC-32C when loading. Default: true.
  bool verify = true;
  // The model to start from when there is no checkpoint to resume: a checkpoint file (a
  // published model too) or a checkpoint directory (its `latest`); only the model's tensors
  // are loaded, the optimizer starts afresh (TrainerOptions::init_from). "": none. Default: "".
  std::string init_from;
  bool operator==(const CheckpointSection&) const = default;
};

// [logging]
struct LoggingSection {
  int64_t every_steps = 1;  // Steps between progress lines. >= 1. Default: 1.
  // The device's peak TFLOP/s for MFU; 0: from the table of known devices. >= 0. Default: 0.
  double peak_tflops = 0;
  bool operator==(const LoggingSection&) const = default;
};

struct RunConfig {
  RunSection run;
  ModelSection model;
  ParallelSection parallel;
  DataSection data;
  OptimSection optim;
  TrainSection train;
  CheckpointSection checkpoint;
  LoggingSection logging;

  // OK when the keys agree with one another: the model resolves (ResolveGptConfig);
  // data.seq_len <= block_size; parallel.tp divides n_head and the padded vocabulary;
  // data.micro_batch_size divides data.batch_size; optim.min_lr <= optim.lr;
  // optim.warmup_steps <= ScheduleSteps() when that is not 0; at least one of
  // train.max_steps, max_tokens, max_minutes unless data.watch is set; data.replay_ratio > 0
  // only with data.watch; train.publish_dir only with train.eval_every > 0;
  // attention "flash" only on device "cuda" and with heads of at most 128 (n_embd / n_head).
  // Otherwise InvalidArgument naming the keys.
  // (What depends on the number of ranks is ResolveLayout's.)
  [[nodiscard]] absl::Status Validate() const;

  // Tokens per optimizer step: data.batch_size * data.seq_len.
  int64_t TokensPerStep() const { return data.batch_size * data.seq_len; }
  // The steps the learning-rate schedule spans: the lower of train.max_steps and
  // ceil(train.max_tokens / TokensPerStep()), of those set; 0 when neither is (a run limited
  // by time only), and then the rate stays at optim.lr after the warmup.
  int64_t ScheduleSteps() const;

  bool operator==(const RunConfig&) const = default;
};

// Parses a TOML document, then applies `overrides` in order ("optim.lr=3e-4"; see
// ApplyOverride), then Validate(). `source_name` names the document in errors (a path).
[[nodiscard]] absl::StatusOr<RunConfig> ParseRunConfig(
    absl::string_view toml_text, absl::string_view source_name,
    const std::vector<std::string>& overrides = {});

// Reads the file at `path` and parses it as ParseRunConfig does. NotFound when it cannot be
// read.
[[nodiscard]] absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides);

// Sets one key from "section.key=value". The value is a TOML value (3e-4, 12, true, "x");
// for string keys the text itself is also taken (model.preset=gpt2, data.dir=data/brown,
// and data.watch= for none). Does not Validate().
[[nodiscard]] absl::Status ApplyOverride(absl::string_view assignment, RunConfig& config);

// The effective configuration as TOML: every key, defaults included, in the order above;
// the model keys left unset appear as comments with the preset's value.
// REQUIRES: config.model.preset is a preset's name. ParseRunConfig of the result (with no
// overrides) gives back `config` when it is valid.
std::string ToToml(const RunConfig& config);

// The model: the preset with the [model] overrides applied, validated (GptConfig::Validate).
[[nodiscard]] absl::StatusOr<GptConfig> ResolveGptConfig(const RunConfig& config);

// How a run's ranks divide the work.
struct RunLayout {
  int tp = 1;                      // parallel.tp
  int dp = 1;                      // world size / tp
  int64_t micro_batch_size = 1;    // per rank per forward pass
  int64_t accumulation_steps = 1;  // forward/backward passes per optimizer step
};

// The layout for `world_size` ranks: InvalidArgument when parallel.tp does not divide it or
// dp * micro_batch_size does not divide data.batch_size. REQUIRES: world_size >= 1.
[[nodiscard]] absl::StatusOr<RunLayout> ResolveLayout(const RunConfig& config, int world_size);

// The [optim] values as the optimizer and schedule take them.
AdamWOptions ToAdamWOptions(const RunConfig& config);
// total_steps is ScheduleSteps(), or the largest int64 when that is 0.
LrSchedule ToLrSchedule(const RunConfig& config);
RetentionPolicy ToRetentionPolicy(const RunConfig& config);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_RUN_CONFIG_H_
