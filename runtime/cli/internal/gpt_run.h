// What `usine train` and `usine finetune` share: a GPT model trained by the Trainer as a run
// configuration says (runtime/train/run_config.h, docs/config.md), under mpirun, srun or
// alone, with its start and end printed by rank 0 and errors turned into one line.
//
//   return RunGpt("usine finetune", "run.toml", overrides);   // the process's exit code
#ifndef USINE_RUNTIME_CLI_INTERNAL_GPT_RUN_H_
#define USINE_RUNTIME_CLI_INTERNAL_GPT_RUN_H_

#include <string>
#include <vector>

namespace usine::cli_internal {

// Loads the configuration at `config_path` with `overrides` (ApplyOverride's "key=value",
// in order), builds the world, the grid and the model, and trains, resuming from the run
// directory's `latest` checkpoint when there is one. Returns the exit code: 0 when a budget
// is reached, 75 (kExitRequeue) after SIGTERM/SIGUSR1 and its checkpoint, 1 for an error
// (one line starting with `command`; under several ranks the whole job is aborted).
// A collective over the launch's ranks: every rank calls it, with the same arguments.
int RunGpt(const std::string& command, const std::string& config_path,
           const std::vector<std::string>& overrides);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_GPT_RUN_H_
