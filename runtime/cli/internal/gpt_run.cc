#include "runtime/cli/internal/gpt_run.h"

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "collectives/process_grid.h"
#include "runtime/cli/internal/run_on_world.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/prep.h"
#include "runtime/kernels/matmul.h"
#include "runtime/launch/world.h"
#include "runtime/nn/gpt.h"
#include "runtime/train/flops.h"
#include "runtime/train/run_config.h"
#include "runtime/train/trainer.h"

namespace usine::cli_internal {
namespace {

struct TrainData {
  std::vector<std::string> train;
  std::vector<std::string> val;
  int64_t vocab_size = 0;
};

// The shards of a `usine prep` directory, by split.
absl::StatusOr<TrainData> ReadShards(const std::string& dir) {
  ASSIGN_OR_RETURN(PrepManifest manifest, ReadPrepManifest(dir + "/manifest.json"));
  TrainData data{.train = ShardPaths(manifest, dir, DataSplit::kTrain),
                 .val = ShardPaths(manifest, dir, DataSplit::kVal),
                 .vocab_size = manifest.vocab_size};
  if (data.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json lists no train shard"));
  }
  return data;
}

// The batches stay on the host (train_data.device), on every model device: the embedding and
// the cross-entropy read the token ids on the host, so a device copy would only come back.
absl::StatusOr<TrainerOptions> ToTrainerOptions(const RunConfig& config, const RunLayout& layout,
                                                const GptConfig& model, const TrainData& data) {
  TrainerOptions o;
  o.run_dir = config.run.dir;
  o.train_data.shards = data.train;
  o.train_data.vocab_size = model.vocab_size;
  o.train_data.batch_size = layout.micro_batch_size;
  o.train_data.seq_len = config.data.seq_len;
  o.train_data.seed = static_cast<uint64_t>(config.run.seed);
  o.train_data.shuffle = config.data.shuffle;
  o.train_data.prefetch = static_cast<int>(config.data.prefetch);
  if (!config.data.watch.empty()) {
    o.train_data.watch = WatchOptions{.directory = config.data.watch,
                                      .replay_ratio = config.data.replay_ratio,
                                      .replay_when_idle = config.data.replay_when_idle};
  }
  o.val_shards = data.val;
  o.global_batch = config.data.batch_size;
  o.adamw = ToAdamWOptions(config);
  o.zero = config.parallel.zero;
  o.schedule = ToLrSchedule(config);
  o.max_grad_norm = config.optim.max_grad_norm;
  o.max_steps = config.train.max_steps;
  o.max_tokens = config.train.max_tokens;
  o.max_time = absl::Seconds(config.train.max_minutes * 60);
  o.eval_every = config.train.eval_every;
  o.eval_batches = config.train.eval_batches;
  o.max_bad_steps = static_cast<int>(config.train.max_bad_steps);
  o.checkpoint_every_steps = config.checkpoint.every_steps;
  o.checkpoint_every = absl::Seconds(config.checkpoint.every_minutes * 60);
  o.retention = ToRetentionPolicy(config);
  o.resume = config.checkpoint.resume;
  o.verify_on_load = config.checkpoint.verify;
  o.init_from = config.checkpoint.init_from;
  o.publish_dir = config.train.publish_dir;
  o.config_text = ToToml(config);
  o.model_config_json = GptConfigToJson(model);
  o.seed = static_cast<uint64_t>(config.run.seed);
  o.metrics.log_every = config.logging.every_steps;
  o.metrics.flops_per_token = TrainingFlopsPerToken(model, config.data.seq_len);
  if (config.logging.peak_tflops > 0) o.metrics.peak_flops = config.logging.peak_tflops * 1e12;
  // The peak of the precision the products run in (the cpu's is its measured sgemm rate).
  o.metrics.precision = config.model.matmul_precision;
  return o;
}

// Every rank reads the configuration itself; the job must run one. A file that differs
// between hosts, was edited during the launch, or other --set flags would split the ranks'
// decisions (or leave some waiting for the others): an error on every rank, naming the first
// rank that reads another configuration than rank 0.
absl::StatusOr<RunConfig> LoadAgreedRunConfig(Communicator& world, const std::string& path,
                                              const std::vector<std::string>& overrides) {
  absl::StatusOr<RunConfig> config = LoadRunConfig(path, overrides);
  RETURN_IF_ERROR(AgreeOnStatus(world, config.status()));
  ASSIGN_OR_RETURN(const std::vector<std::string> all, AllGatherBytes(world, ToToml(*config)));
  for (int r = 1; r < world.size(); ++r) {
    if (all[r] != all[0]) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": rank ", r,
                       " reads another run configuration than rank 0 (the file differs "
                       "between hosts, or the ranks were given other --set flags)"));
    }
  }
  return config;
}

absl::StatusOr<int> Train(World& world, const std::string& command, const std::string& path,
                          const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(const RunConfig config, LoadAgreedRunConfig(world.comm(), path, overrides));
  ASSIGN_OR_RETURN(const RunLayout layout, ResolveLayout(config, world.size()));
  ASSIGN_OR_RETURN(const GptConfig model_config, ResolveGptConfig(config));
  Device device = Device::Cpu();
  if (config.model.device == DeviceType::kCuda) {
    if (!world.device().is_cuda()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": model.device = \"cuda\", but this rank (on ", world.hostname(),
                       ") has no CUDA device"));
    }
    device = world.device();
  }
  SetF32MatmulPrecision(config.model.matmul_precision);
  ASSIGN_OR_RETURN(const TrainData data, ReadShards(config.data.dir));
  if (data.vocab_size > model_config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.data.dir, ": the tokens go up to vocabulary size ", data.vocab_size,
                     ", more than the model's ", model_config.vocab_size, " (model.vocab_size)"));
  }
  // On CUDA the grid's communicators are NCCL's (host tensors still go over MPI).
  ASSIGN_OR_RETURN(Communicator* const comm, world.CommunicatorFor(device));
  ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(*comm, layout.tp));
  ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = model_config,
                                            .seed = static_cast<uint64_t>(config.run.seed),
                                            .recompute = config.model.recompute,
                                            .device = device,
                                            .tp = &grid->comm(ParallelAxis::kTensor),
                                            .attention = config.model.attention ==
                                                                 ModelSection::Attention::kFlash
                                                             ? AttentionKernel::kFlash
                                                             : AttentionKernel::kUnfused}));
  ASSIGN_OR_RETURN(TrainerOptions options, ToTrainerOptions(config, layout, model_config, data));
  if (world.rank() == 0) {
    std::printf(
        "%s: %s, %s (%lld layers, %lld wide), %s; batch %lld x %lld tokens, "
        "%lld micro-batch%s per step; run directory %s\n",
        command.c_str(), path.c_str(), model_config.name.c_str(),
        static_cast<long long>(model_config.n_layer), static_cast<long long>(model_config.n_embd),
        grid->DebugString().c_str(), static_cast<long long>(config.data.batch_size),
        static_cast<long long>(config.data.seq_len),
        static_cast<long long>(layout.accumulation_steps),
        layout.accumulation_steps == 1 ? "" : "es", config.run.dir.c_str());
    std::fflush(stdout);
  }
  ASSIGN_OR_RETURN(auto trainer, Trainer::Create(*grid, *model, std::move(options)));
  ASSIGN_OR_RETURN(const TrainOutcome outcome, trainer->Run());
  if (world.rank() == 0) {
    std::printf("%s: %s at step %lld (%lld tokens, %lld skipped steps)\n", command.c_str(),
                outcome.reason == StopReason::kSignal
                    ? absl::StrCat("stopped by signal ", outcome.signal,
                                   ", checkpointed; exit 75 to requeue")
                          .c_str()
                    : "budget reached",
                static_cast<long long>(outcome.step), static_cast<long long>(outcome.tokens_seen),
                static_cast<long long>(outcome.skipped_steps));
  }
  return outcome.exit_code();
}

}  // namespace

int RunGpt(const std::string& command, const std::string& config_path,
           const std::vector<std::string>& overrides) {
  return RunOnWorld(command,
                    [&](World& world) { return Train(world, command, config_path, overrides); });
}

}  // namespace usine::cli_internal
