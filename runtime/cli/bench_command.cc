// `usine bench <what>`: benchmarks that print figures next to a peer measured in the same run
// on the same machine (docs/BENCHMARKS.md records them).
#include <vector>

#include "CLI/CLI.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/benchmarks.h"

namespace usine::cli {

Command AddBenchCommand(CLI::App& parent) {
  CLI::App* bench = parent.add_subcommand(
      "bench",
      "benchmarks against a peer measured in the same run: data, checkpoint, train, attention");
  bench->require_subcommand(1);
  std::vector<Command> benchmarks = {
      cli_internal::AddBenchData(*bench), cli_internal::AddBenchCheckpoint(*bench),
      cli_internal::AddBenchTrain(*bench), cli_internal::AddBenchAttention(*bench)};
  return {bench, [benchmarks = std::move(benchmarks)] {
            for (const Command& benchmark : benchmarks) {
              if (benchmark.app->parsed()) return benchmark.run();
            }
            return 2;  // Unreachable: the parse requires one benchmark.
          }};
}

}  // namespace usine::cli
