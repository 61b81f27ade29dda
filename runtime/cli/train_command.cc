// `usine train --config run.toml [--set key=value]...`: trains a GPT model as the run
// configuration says (runtime/train/run_config.h, docs/config.md) under mpirun, srun or
// alone, resuming from the run directory's `latest` checkpoint when there is one. Exit code:
// 0 when a budget is reached, 75 (kExitRequeue) after SIGTERM/SIGUSR1 and its checkpoint,
// 1 for an error (one line naming what and where).
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/gpt_run.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Trains a GPT model as the run configuration (TOML, docs/config.md) says, data- and\n"
    "tensor-parallel over the ranks of mpirun or srun, resuming from the run directory's\n"
    "latest checkpoint. Exit code 75 after SIGTERM/SIGUSR1: checkpointed, requeue to go on.";

}  // namespace

Command AddTrainCommand(CLI::App& parent) {
  struct Flags {
    std::string config;
    std::vector<std::string> sets;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* app = parent.add_subcommand(
      "train", "train a GPT model from a TOML run configuration (resumes from its checkpoints)");
  app->footer(kDescription);
  app->add_option("--config", flags->config, "the run configuration")
      ->required()
      ->type_name("RUN.toml");
  app->add_option("--set", flags->sets, "overrides a key of the configuration (optim.lr=3e-4)")
      ->allow_extra_args(false)
      ->type_name("KEY=VALUE");
  return {app, [flags] { return cli_internal::RunGpt("usine train", flags->config, flags->sets); }};
}

}  // namespace usine::cli
