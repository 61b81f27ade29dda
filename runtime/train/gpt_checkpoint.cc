#include "runtime/train/gpt_checkpoint.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/checkpoint_file.h"
#include "checkpoint/state_dict.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/nn/gpt_config.h"
#include "runtime/train/checkpoint_keys.h"

namespace usine {
namespace {

namespace keys = checkpoint_keys;

absl::StatusOr<GptConfig> ReadConfig(const std::string& file, const StateDict& metadata) {
  absl::StatusOr<std::string> json = metadata.GetJson(keys::kModelConfig);
  if (!json.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": no model to build: ", json.status().message(),
                     " (a checkpoint that `usine train` wrote records its model's shape there)"));
  }
  absl::StatusOr<GptConfig> config = GptConfigFromJson(*json);
  if (!config.ok()) return WithContext(config.status(), file);
  RETURN_IF_ERROR(WithContext(config->Validate(), file));
  return config;
}

// Fills `model`'s parameters from the file's "model/" tensors. Reads take host tensors: a
// device parameter is read into a host buffer, then copied over.
absl::Status ReadWeights(const std::string& file, Gpt& model, Communicator& world,
                         const ReadOptions& read) {
  StateDict wanted;
  RETURN_IF_ERROR(model.AddToStateDict(wanted, keys::kModelPrefix));
  StateDict host;
  std::vector<std::pair<Tensor, Tensor>> staged;  // (host buffer, device piece)
  const auto stage = [&]() -> absl::Status {
    for (const auto& [name, entry] : wanted.tensors()) {
      for (const TensorPiece& piece : entry.pieces) {
        Tensor buffer = piece.tensor;
        if (!buffer.device().is_cpu()) {
          ASSIGN_OR_RETURN(buffer, Tensor::Empty(piece.tensor.shape(), piece.tensor.dtype()));
          staged.emplace_back(buffer, piece.tensor);
        }
        RETURN_IF_ERROR(host.AddShard(name, buffer, entry.global_shape, piece.offset));
      }
    }
    return absl::OkStatus();
  };
  const auto unstage = [&]() -> absl::Status {
    for (const auto& [buffer, piece] : staged) {
      RETURN_IF_ERROR(WithContext(Copy(buffer, piece), absl::StrCat(file, ": to the device")));
    }
    return absl::OkStatus();
  };
  // Host or device memory may run out on some ranks only: all of them learn of it.
  RETURN_IF_ERROR(AgreeOnStatus(world, stage()));
  RETURN_IF_ERROR(ReadCheckpointFile(file, host, world, read));
  return AgreeOnStatus(world, unstage());
}

}  // namespace

absl::StatusOr<GptCheckpoint> LoadGptCheckpoint(Communicator& world, const std::string& path,
                                                const GptCheckpointOptions& options) {
  ASSIGN_OR_RETURN(std::string file, ResolveCheckpointPathOnRankZero(world, path));
  const ReadOptions read{.verify_checksums = options.verify_checksums};
  StateDict metadata;  // No tensors: the file's metadata alone.
  RETURN_IF_ERROR(ReadCheckpointFile(file, metadata, world, read));
  ASSIGN_OR_RETURN(const GptConfig config, ReadConfig(file, metadata));
  absl::StatusOr<int64_t> step = metadata.GetInt(keys::kStep);
  if (!step.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(file, ": ", step.status().message()));
  }
  absl::StatusOr<std::string> run_config = metadata.GetString(keys::kRunConfig);
  if (absl::IsNotFound(run_config.status())) run_config = std::string();
  RETURN_IF_ERROR(WithContext(run_config.status(), file));
  absl::StatusOr<std::unique_ptr<Gpt>> model = Gpt::Create({.config = config,
                                                            .initialize = false,
                                                            .gradients = false,
                                                            .device = options.device,
                                                            .tp = options.tp,
                                                            .attention = options.attention});
  // Before the collective read: a rank that cannot build the model (out of memory) must not
  // leave the others waiting in it.
  RETURN_IF_ERROR(WithContext(AgreeOnStatus(world, model.status()), file));
  RETURN_IF_ERROR(ReadWeights(file, **model, world, read));
  return GptCheckpoint{.model = std::move(*model),
                       .path = std::move(file),
                       .step = *step,
                       .run_config = std::move(*run_config)};
}

}  // namespace usine
