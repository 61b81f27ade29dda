// The model of a checkpoint, for the commands that read one (`usine eval`, `usine sample`):
// the flags that name it and its layout, and the loading under mpirun or alone.
//
//   CheckpointModelFlags flags;
//   AddCheckpointModelFlags(*app, &flags);
//   ... after parsing, on every rank:
//   ASSIGN_OR_RETURN(CheckpointModel m, LoadCheckpointModel(*world, flags));
//   ... m.loaded.model, m.grid->comm(ParallelAxis::kData), m.run_config ...
#ifndef USINE_RUNTIME_CLI_INTERNAL_CHECKPOINT_MODEL_H_
#define USINE_RUNTIME_CLI_INTERNAL_CHECKPOINT_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

#include "CLI/CLI.hpp"
#include "collectives/process_grid.h"
#include "runtime/launch/world.h"
#include "runtime/train/gpt_checkpoint.h"
#include "runtime/train/run_config.h"

namespace usine::cli_internal {

struct CheckpointModelFlags {
  std::string checkpoint;  // A checkpoint file, a checkpoints directory or a run directory.
  int64_t tp = 1;          // Tensor-parallel ranks; the rest of the world is data-parallel.
  std::string device;      // "cpu", "cuda", or empty: the run's model.device.
  // "f32", "tf32", "bf16", or empty: the run's model.matmul_precision (f32 without one).
  std::string matmul_precision;
};

// CKPT (positional, required), --tp, --device and --matmul-precision.
void AddCheckpointModelFlags(CLI::App& app, CheckpointModelFlags* flags);

struct CheckpointModel {
  // Over the world (World::CommunicatorFor the model's device: NCCL on CUDA): TP = flags.tp,
  // DP = the rest.
  std::unique_ptr<ProcessGrid> grid;
  GptCheckpoint loaded;                 // The model lives on the grid's TP group.
  std::optional<RunConfig> run_config;  // The run's configuration, when the checkpoint has it.
};

// Loads the checkpoint's model onto the grid (LoadGptCheckpoint) and sets the process's
// F32MatmulPrecision, so that its losses are those its run computed. A collective over the
// world.
// Errors: --tp not dividing the world size, --device cuda without a GPU, the checkpoint's, and a
// run configuration in it that does not parse (naming the checkpoint).
[[nodiscard]] absl::StatusOr<CheckpointModel> LoadCheckpointModel(
    World& world, const CheckpointModelFlags& flags);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_CHECKPOINT_MODEL_H_
