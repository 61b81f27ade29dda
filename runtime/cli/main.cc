// `usine <command> [flags]`: the dispatcher.
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/cli/commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

constexpr Command kCommands[] = {
    {"prep", "tokenise text, directories and JSONL files into token shards",
     usine::cli::PrepCommand},
    {"train", "train a GPT model from a TOML run configuration (resumes from its checkpoints)",
     usine::cli::TrainCommand},
    {"inspect", "show a checkpoint's metadata and tensors; --verify checks its CRCs",
     usine::cli::InspectCommand},
    {"bench", "benchmarks against a peer measured in the same run: data, checkpoint",
     usine::cli::BenchCommand},
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: usine <command> [flags]   (usine <command> --help for its flags)\n\n"
               "commands:\n");
  for (const Command& command : kCommands) {
    std::fprintf(out, "  %-10s %s\n", command.name, command.summary);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(stdout);
    return 0;
  }
  for (const Command& command : kCommands) {
    if (name == command.name) return command.run(std::vector<std::string>(argv + 2, argv + argc));
  }
  std::fprintf(stderr, "usine: unknown command '%s'\n\n", name.c_str());
  PrintUsage(stderr);
  return 2;
}
