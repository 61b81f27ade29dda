// The commands of the `usine` executable (DESIGN.md): each Add*Command declares a subcommand
// of `parent` (CLI11), its flags with their help and defaults, and returns it with what runs it
// once the command line has been parsed; main.cc runs the one that was given.
#ifndef USINE_RUNTIME_CLI_COMMANDS_H_
#define USINE_RUNTIME_CLI_COMMANDS_H_

#include <functional>

namespace CLI {
class App;
}  // namespace CLI

namespace usine::cli {

struct Command {
  CLI::App* app = nullptr;  // The subcommand; owned by its parent.
  // Runs the command with the parsed flags; returns the process's exit code, having printed
  // the command's output and its errors (one line each).
  std::function<int()> run;
};

// `usine prep`: text, directories and JSONL files into token shards (runtime/data/prep.h).
Command AddPrepCommand(CLI::App& parent);

// `usine train`: trains a GPT model from a TOML run configuration (runtime/train/trainer.h).
Command AddTrainCommand(CLI::App& parent);

// `usine eval`: the loss and perplexity of a checkpoint on a dataset's split.
Command AddEvalCommand(CLI::App& parent);

// `usine sample`: text a checkpoint's model writes after a prompt (top-k, temperature).
Command AddSampleCommand(CLI::App& parent);

// `usine finetune`: `usine train` on the shards that land in a watched directory, publishing
// improved models (runtime/train/trainer.h's watch mode, init_from, publish_dir).
Command AddFinetuneCommand(CLI::App& parent);

// `usine inspect`: a checkpoint's metadata and tensors; --verify checks its CRCs.
Command AddInspectCommand(CLI::App& parent);

// `usine import`: a Hugging Face GPT-2 (safetensors) as a usine checkpoint file.
Command AddImportCommand(CLI::App& parent);

// `usine export`: a checkpoint's GPT as a Hugging Face GPT-2 (safetensors).
Command AddExportCommand(CLI::App& parent);

// `usine bench <what>`: benchmarks against a peer measured in the same run (docs/BENCHMARKS.md):
// data (DataStream, tokenizer), checkpoint (stall, write and load against copy and dd), train.
Command AddBenchCommand(CLI::App& parent);

}  // namespace usine::cli

#endif  // USINE_RUNTIME_CLI_COMMANDS_H_
