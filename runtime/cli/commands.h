// The commands of the `usine` executable (DESIGN.md: prep, train, finetune, eval, inspect,
// bench; those that exist so far). Each takes the arguments after its name and returns the
// process's exit code, having printed its own output and errors.
#ifndef USINE_RUNTIME_CLI_COMMANDS_H_
#define USINE_RUNTIME_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace usine::cli {

// `usine prep`: text, directories and JSONL files into token shards (runtime/data/prep.h).
int PrepCommand(const std::vector<std::string>& args);

// `usine train`: trains a GPT model from a TOML run configuration (runtime/train/trainer.h).
int TrainCommand(const std::vector<std::string>& args);

// `usine inspect`: a checkpoint's metadata and tensors; --verify checks its CRCs.
int InspectCommand(const std::vector<std::string>& args);

// `usine bench <what>`: benchmarks against a peer measured in the same run (docs/BENCHMARKS.md):
// data (DataStream, tokenizer), checkpoint (stall, write and load against copy and dd).
int BenchCommand(const std::vector<std::string>& args);

}  // namespace usine::cli

#endif  // USINE_RUNTIME_CLI_COMMANDS_H_
