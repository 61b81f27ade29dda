// `usine eval CKPT`: the loss and perplexity of a checkpoint's model on a split of a `usine prep`
// dataset (by default the validation split of the data the run trained on), data- and
// tensor-parallel under mpirun or alone. Rank 0 prints one line (or, with --json, one JSON
// object); exit code 1 for an error, printed as one line.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/checkpoint_model.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/cli/internal/run_on_world.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/prep.h"
#include "runtime/train/evaluate.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Evaluates a checkpoint's GPT on a split of a `usine prep` dataset: the mean next-token\n"
    "loss and its perplexity. The dataset, the sequence length and the device default to the\n"
    "run's (the configuration saved in the checkpoint). Under `mpirun -np N` the ranks share\n"
    "the batches (data-parallel, with --tp ranks per model).";

struct EvalFlags {
  cli_internal::CheckpointModelFlags model;
  std::string data;  // Empty: the run's data.dir.
  std::string split = "val";
  int64_t seq_len = 0;  // 0: the run's data.seq_len.
  int64_t batch_size = 8;
  int64_t batches = 0;
  bool json = false;
};

absl::Status Run(World& world, const EvalFlags& f) {
  ASSIGN_OR_RETURN(cli_internal::CheckpointModel m,
                   cli_internal::LoadCheckpointModel(world, f.model));
  const std::string data_dir =
      !f.data.empty() ? f.data : (m.run_config.has_value() ? m.run_config->data.dir : "");
  const int64_t seq_len =
      f.seq_len > 0 ? f.seq_len : (m.run_config.has_value() ? m.run_config->data.seq_len : 0);
  if (data_dir.empty() || seq_len < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(m.loaded.path, " has no run configuration: give --data and --seq-len"));
  }
  if (f.batch_size < 1 || f.batches < 0) {
    return absl::InvalidArgumentError("--batch-size must be positive and --batches not negative");
  }
  ASSIGN_OR_RETURN(const PrepManifest manifest, ReadPrepManifest(data_dir + "/manifest.json"));
  const DataSplit split = f.split == "train" ? DataSplit::kTrain : DataSplit::kVal;
  DataStreamOptions data;
  data.shards = ShardPaths(manifest, data_dir, split);
  if (data.shards.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(data_dir, "/manifest.json lists no ", SplitName(split), " shard"));
  }
  data.vocab_size = m.loaded.model->config().vocab_size;
  data.seq_len = seq_len;
  data.batch_size = f.batch_size;
  data.device = m.loaded.model->Parameters()[0].parameter->value.device();
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(const EvalResult result,
                   Evaluate(*m.loaded.model, &m.grid->comm(ParallelAxis::kData), data, f.batches));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (world.rank() != 0) return absl::OkStatus();
  if (f.json) {
    const nlohmann::json record = {{"checkpoint", m.loaded.path},
                                   {"step", m.loaded.step},
                                   {"data", data_dir},
                                   {"split", std::string(SplitName(split))},
                                   {"loss", result.loss},
                                   {"perplexity", result.perplexity()},
                                   {"tokens", result.tokens},
                                   {"seconds", seconds}};
    std::printf("%s\n", record.dump().c_str());
  } else {
    absl::PrintF(
        "usine eval: %s (step %d) on %s/%s: loss %.4f, perplexity %.2f over %d tokens "
        "(%d batches x %d ranks x %d x %d) in %.1f s\n",
        m.loaded.path, m.loaded.step, data_dir, SplitName(split), result.loss, result.perplexity(),
        result.tokens, result.batches, m.grid->size(ParallelAxis::kData), f.batch_size, seq_len,
        seconds);
  }
  return absl::OkStatus();
}

}  // namespace

Command AddEvalCommand(CLI::App& parent) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* app =
      parent.add_subcommand("eval", "loss and perplexity of a checkpoint on a dataset's split");
  app->footer(kDescription);
  cli_internal::AddCheckpointModelFlags(*app, &f->model);
  cli_internal::AddFlag(*app, "--data", f->data, "a `usine prep` directory (default: the run's)",
                        "DIR");
  cli_internal::AddFlag(*app, "--split", f->split, "which split of it", "SPLIT")
      ->check(CLI::IsMember({"val", "train"}));
  cli_internal::AddFlag(*app, "--seq-len", f->seq_len, "tokens per sequence (0: the run's)", "T");
  cli_internal::AddFlag(*app, "--batch-size", f->batch_size, "sequences per rank per batch", "B");
  cli_internal::AddFlag(*app, "--batches", f->batches,
                        "batches per rank (0: every whole batch of the split)", "N");
  app->add_flag("--json", f->json, "print one JSON object instead of the line");
  return {app, [f] {
            return cli_internal::RunOnWorld("usine eval", [&](World& world) -> absl::StatusOr<int> {
              RETURN_IF_ERROR(Run(world, *f));
              return 0;
            });
          }};
}

}  // namespace usine::cli
