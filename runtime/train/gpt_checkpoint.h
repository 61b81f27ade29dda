// A Gpt (runtime/nn/gpt.h) built from a checkpoint of `usine train` (the Trainer): its shape
// from the checkpoint's "model_config" (GptConfigToJson's JSON), its weights from the
// "model/" tensors, at any tensor-parallel layout (the checkpoint may have been written at
// another: checkpoint/state_dict.h), for evaluation and sampling. The optimizer's entries and
// the data position are not read.
//
//   ASSIGN_OR_RETURN(GptCheckpoint loaded,
//                    LoadGptCheckpoint(world.comm(), "runs/gpt2",
//                                      {.device = world.device(),
//                                       .tp = &grid->comm(ParallelAxis::kTensor)}));
//   ASSIGN_OR_RETURN(std::vector<int32_t> more, Sample(*loaded.model, prompt, {}));
//
// Unlike Checkpointer::Create, loading changes nothing in the directory (no leftovers are
// removed: a run may be writing there meanwhile).
#ifndef USINE_RUNTIME_TRAIN_GPT_CHECKPOINT_H_
#define USINE_RUNTIME_TRAIN_GPT_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/gpt.h"

namespace usine {

struct GptCheckpointOptions {
  Device device = Device::Cpu();  // Where the model lives. Default: the cpu.
  // The model's tensor-parallel group (GptOptions::tp; it outlives the model). REQUIRES: its
  // size divides the checkpoint's n_head and padded vocabulary. Default: null, no TP.
  Communicator* tp = nullptr;
  AttentionKernel attention = AttentionKernel::kUnfused;  // GptOptions::attention.
  bool verify_checksums = true;  // Check the tensors' CRC-32Cs (checkpoint_file.h).
};

struct GptCheckpoint {
  std::unique_ptr<Gpt> model;  // f32, with the checkpoint's weights.
  std::string path;            // The checkpoint file read.
  int64_t step = 0;            // Its "step": the training steps done.
  std::string run_config;      // Its "run_config", the run's TOML; empty when it has none.
};

// The Gpt of the checkpoint that `path` names (ResolveCheckpointPathOnRankZero of
// checkpoint_directory.h, so that every rank loads the same file). Errors, the same on every rank
// and naming the file: the resolution's; a file that is no usine checkpoint or is damaged
// (checkpoint_file.h); FailedPrecondition for a checkpoint without "model_config" or "step";
// InvalidArgument for a model_config that is no valid GptConfig, or a TP group that does not divide
// it (Gpt's).
//
// A collective over `world` (every rank calls it; also the TP group's ranks, which must be
// ranks of `world`); REQUIRES: `world` is an MPI communicator when it has more than one rank
// (MPI-IO), and no Checkpointer exists in the process meanwhile (HDF5 is called from this
// thread: checkpoint_file.h).
[[nodiscard]] absl::StatusOr<GptCheckpoint> LoadGptCheckpoint(
    Communicator& world, const std::string& path, const GptCheckpointOptions& options = {});

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_GPT_CHECKPOINT_H_
