// The benchmarks behind `usine bench <what>`, one file each (runtime/cli/bench_*.cc): each
// declares its subcommand of `bench` (runtime/cli/commands.h) and prints its figures.
#ifndef USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_
#define USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_

#include "runtime/cli/commands.h"

namespace usine::cli_internal {

// DataStream vs read(2) of the same shards; the tokenizer vs gpt-3-encoder under node.
cli::Command AddBenchData(CLI::App& bench);
// Checkpoint stall, write and load vs a copy, dd conv=fsync and read() (alone or under mpirun).
cli::Command AddBenchCheckpoint(CLI::App& bench);
// A GPT training step's tokens/s and FLOP rate vs PyTorch on the same model and batch.
cli::Command AddBenchTrain(CLI::App& bench);
// Causal attention's forward and backward vs PyTorch's kernels on the same shape.
cli::Command AddBenchAttention(CLI::App& bench);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_
