// `usine finetune --config run.toml --watch DIR [--from CKPT] [--publish DIR] [--set k=v]...`:
// continuous fine-tuning (docs/finetune.md). The run configuration of `usine train`, with
// the flags as its keys, set after the file and before --set: --watch is data.watch (train
// on each shard that lands in DIR, once), --from is checkpoint.init_from (the model to start
// from when the run directory has no checkpoint yet), --publish is train.publish_dir (after
// each evaluation that beats the best validation loss so far, DIR/model-vNNNN.h5). Without a
// train.max_* limit it runs until SIGTERM/SIGUSR1: checkpoint, exit 75; started again, it
// resumes where it stopped.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "CLI/CLI.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/gpt_run.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Watches DIR for token shards (written elsewhere, then renamed to *.bin in DIR) and\n"
    "trains on each once, as the run configuration says (docs/config.md, docs/finetune.md);\n"
    "evaluates on the val split and publishes a model only when its validation loss improves.\n"
    "Runs until SIGTERM/SIGUSR1 (unless train.max_* says otherwise), then checkpoints and\n"
    "exits with 75; started again, it resumes.";

}  // namespace

Command AddFinetuneCommand(CLI::App& parent) {
  struct Flags {
    std::string config;
    std::string watch;
    std::string from;
    std::string publish;
    std::vector<std::string> sets;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* app = parent.add_subcommand(
      "finetune", "train a GPT model on token shards as they land in a directory (continuous)");
  app->footer(kDescription);
  app->add_option("--config", flags->config, "the run configuration")
      ->required()
      ->type_name("RUN.toml");
  app->add_option("--watch", flags->watch, "the directory where new shards land (data.watch)")
      ->required()
      ->type_name("DIR");
  app->add_option("--from", flags->from,
                  "the model to start from: a checkpoint file or directory (checkpoint.init_from)")
      ->type_name("CKPT");
  app->add_option("--publish", flags->publish,
                  "where improved models are published (train.publish_dir)")
      ->type_name("DIR");
  app->add_option("--set", flags->sets, "overrides a key of the configuration (optim.lr=3e-4)")
      ->allow_extra_args(false)
      ->type_name("KEY=VALUE");
  return {app, [flags] {
            std::vector<std::string> overrides = {absl::StrCat("data.watch=", flags->watch)};
            if (!flags->from.empty()) {
              overrides.push_back(absl::StrCat("checkpoint.init_from=", flags->from));
            }
            if (!flags->publish.empty()) {
              overrides.push_back(absl::StrCat("train.publish_dir=", flags->publish));
            }
            overrides.insert(overrides.end(), flags->sets.begin(), flags->sets.end());
            return cli_internal::RunGpt("usine finetune", flags->config, overrides);
          }};
}

}  // namespace usine::cli
