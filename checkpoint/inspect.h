// What a checkpoint file holds, for tools (`usine inspect`) and for checking files from
// outside: format, metadata, and each tensor's dtype, shape, size and recorded CRC-32C, with
// the option of reading every tensor back to recompute its CRC.
//
//   ASSIGN_OR_RETURN(CheckpointInfo info, InspectCheckpoint("ckpt/step-00001200.h5", true));
//   for (const StoredTensorInfo& t : info.tensors) ... t.name, t.shape, t.crc_ok ...
//
// One process, no MPI (POSIX I/O). Like every HDF5 call in usine, from one thread at a time
// in the process, with no Checkpointer alive. A file that is not a usine checkpoint, or is
// damaged, is an error that names it, never a crash.
#ifndef USINE_CHECKPOINT_INSPECT_H_
#define USINE_CHECKPOINT_INSPECT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "checkpoint/state_dict.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace usine {

struct StoredTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  int64_t bytes = 0;
  uint32_t crc32c = 0;         // As recorded.
  std::optional<bool> crc_ok;  // Set when verified: the recomputed CRC matches.
};

struct CheckpointInfo {
  int64_t format_version = 0;
  int64_t world_size = 0;                 // Of the job that wrote it.
  std::vector<StoredTensorInfo> tensors;  // Sorted by name.
  std::map<std::string, MetadataValue> metadata;
  int64_t tensor_bytes() const;
};

// `verify`: read every tensor (in blocks of at most 64 MiB) and recompute its CRC-32C.
[[nodiscard]] absl::StatusOr<CheckpointInfo> InspectCheckpoint(const std::string& path,
                                                               bool verify);
// The same for a file's bytes in memory (`name` is used in messages).
[[nodiscard]] absl::StatusOr<CheckpointInfo> InspectCheckpointImage(absl::string_view bytes,
                                                                    absl::string_view name,
                                                                    bool verify);

}  // namespace usine

#endif  // USINE_CHECKPOINT_INSPECT_H_
