#include "runtime/cli/internal/checkpoint_model.h"

#include <optional>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/inspect.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/matmul.h"
#include "runtime/train/checkpoint_keys.h"

namespace usine::cli_internal {

void AddCheckpointModelFlags(CLI::App& app, CheckpointModelFlags* flags) {
  app.add_option("CKPT", flags->checkpoint,
                 "a checkpoint file, a checkpoints directory or a run directory (its latest)")
      ->required()
      ->type_name("");
  app.add_option("--tp", flags->tp, "tensor-parallel ranks (dividing the world size)")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--device", flags->device, "where the model runs (default: the run's device)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->type_name("DEVICE");
  app.add_option("--matmul-precision", flags->matmul_precision,
                 "what products compute in (default: the run's model.matmul_precision)")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}))
      ->type_name("P");
}

absl::StatusOr<CheckpointModel> LoadCheckpointModel(World& world,
                                                    const CheckpointModelFlags& flags) {
  if (flags.tp < 1 || world.size() % flags.tp != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tp ", flags.tp, " does not divide the ", world.size(), " ranks"));
  }
  CheckpointModel m;
  // Every rank reads the run configuration, whose model.device is the default device.
  ASSIGN_OR_RETURN(const std::string path,
                   ResolveCheckpointPathOnRankZero(world.comm(), flags.checkpoint));
  absl::StatusOr<CheckpointInfo> info = InspectCheckpoint(path, /*verify=*/false);
  RETURN_IF_ERROR(AgreeOnStatus(world.comm(), info.status()));
  if (auto it = info->metadata.find(checkpoint_keys::kRunConfig); it != info->metadata.end()) {
    const std::string* text = std::get_if<std::string>(&it->second);
    if (text == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": run_config is not text"));
    }
    ASSIGN_OR_RETURN(m.run_config, ParseRunConfig(*text, absl::StrCat(path, ": run_config")));
  }
  const bool cuda = flags.device.empty() ? m.run_config.has_value() &&
                                               m.run_config->model.device == DeviceType::kCuda
                                         : flags.device == "cuda";
  if (cuda && !world.device().is_cuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the model runs on cuda, but this rank (on ", world.hostname(),
                     ") has no CUDA device; --device cpu runs it on the cpu"));
  }
  const std::optional<MatmulPrecision> precision = MatmulPrecisionNamed(flags.matmul_precision);
  SetF32MatmulPrecision(precision.has_value()      ? *precision
                        : m.run_config.has_value() ? m.run_config->model.matmul_precision
                                                   : MatmulPrecision::kF32);
  const Device device = cuda ? world.device() : Device::Cpu();
  // On CUDA the grid's communicators are NCCL's (host tensors still go over MPI).
  ASSIGN_OR_RETURN(Communicator* const comm, world.CommunicatorFor(device));
  ASSIGN_OR_RETURN(m.grid, ProcessGrid::Create(*comm, static_cast<int>(flags.tp)));
  ASSIGN_OR_RETURN(
      m.loaded, LoadGptCheckpoint(world.comm(), path,
                                  {.device = device, .tp = &m.grid->comm(ParallelAxis::kTensor)}));
  return m;
}

}  // namespace usine::cli_internal
