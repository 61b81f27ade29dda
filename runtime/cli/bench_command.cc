// `usine bench <what>`: benchmarks that print figures next to a peer measured in the same run
// on the same machine (docs/BENCHMARKS.md records them).
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/cli/commands.h"
#include "runtime/cli/internal/benchmarks.h"

namespace usine::cli {
namespace {

struct Benchmark {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

constexpr Benchmark kBenchmarks[] = {
    {"data", "DataStream vs read(2); tokenizer vs gpt-3-encoder", cli_internal::BenchData},
    {"checkpoint", "checkpoint stall, write and load vs copy, dd and read()",
     cli_internal::BenchCheckpoint},
    {"train", "GPT training step tokens/s vs PyTorch; FLOP rate vs sgemm",
     cli_internal::BenchTrain},
};

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  for (const Benchmark& benchmark : kBenchmarks) {
    if (!args.empty() && args[0] == benchmark.name) {
      return benchmark.run(std::vector<std::string>(args.begin() + 1, args.end()));
    }
  }
  if (!args.empty() && args[0] != "--help") {
    std::fprintf(stderr, "usine bench: unknown benchmark '%s'\n\n", args[0].c_str());
  }
  std::fprintf(stderr,
               "usage: usine bench <what> [flags]   (usine bench <what> --help)\n\nwhat:\n");
  for (const Benchmark& benchmark : kBenchmarks) {
    std::fprintf(stderr, "  %-11s %s\n", benchmark.name, benchmark.summary);
  }
  return 2;
}

}  // namespace usine::cli
