// The benchmarks behind `usine bench <what>`, one file each (runtime/cli/bench_*.cc). Each
// takes the arguments after its name, prints its figures and returns the exit code.
#ifndef USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_
#define USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_

#include <string>
#include <vector>

namespace usine::cli_internal {

// DataStream vs read(2) of the same shards; the tokenizer vs gpt-3-encoder under node.
int BenchData(const std::vector<std::string>& args);
// Checkpoint stall, write and load vs a copy, dd conv=fsync and read() (alone or under mpirun).
int BenchCheckpoint(const std::vector<std::string>& args);
// A GPT training step's tokens/s and FLOP rate vs PyTorch on the same model and batch.
int BenchTrain(const std::vector<std::string>& args);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_BENCHMARKS_H_
