#include "checkpoint/inspect.h"

#include <algorithm>
#include <vector>

#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/h5_objects.h"
#include "checkpoint/internal/metadata_io.h"
#include "checkpoint/internal/stored_tensor.h"
#include "collectives/local/local_communicator.h"
#include "runtime/core/crc32c.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using checkpoint_internal::H5File;

constexpr size_t kMaxTensors = 1'000'000;
constexpr int64_t kBlockBytes = int64_t{64} << 20;

// Reads the whole tensor in blocks of rows (of dimension 0) and returns its CRC-32C.
absl::StatusOr<uint32_t> RecomputeCrc(const H5File& file,
                                      const checkpoint_internal::StoredTensor& t) {
  const Shape& shape = t.dataset.shape;
  const int64_t element = static_cast<int64_t>(DTypeSize(t.dtype));
  if (shape.numel() == 0) return Crc32c(absl::string_view());
  if (shape.rank() == 0) {
    std::vector<uint8_t> buffer(static_cast<size_t>(element));
    RETURN_IF_ERROR(checkpoint_internal::ReadBox(file, t, {}, shape, buffer.data()));
    return Crc32c(absl::Span<const uint8_t>(buffer));
  }
  const int64_t row_bytes = shape.numel() / shape.dim(0) * element;
  const int64_t rows = std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(1, row_bytes));
  std::vector<int64_t> offset(static_cast<size_t>(shape.rank()), 0);
  std::vector<uint8_t> buffer;
  uint32_t crc = 0;
  for (int64_t row = 0; row < shape.dim(0); row += rows) {
    std::vector<int64_t> dims(shape.dims().begin(), shape.dims().end());
    dims[0] = std::min(rows, shape.dim(0) - row);
    offset[0] = row;
    buffer.resize(static_cast<size_t>(dims[0] * row_bytes));
    RETURN_IF_ERROR(checkpoint_internal::ReadBox(file, t, offset, Shape(dims), buffer.data()));
    crc = Crc32cExtend(crc, absl::Span<const uint8_t>(buffer));
  }
  return crc;
}

absl::StatusOr<CheckpointInfo> Inspect(const H5File& file, bool verify) {
  CheckpointInfo info;
  ASSIGN_OR_RETURN(checkpoint_internal::FormatInfo format, checkpoint_internal::CheckFormat(file));
  info.format_version = format.version;
  info.world_size = format.world_size;
  ASSIGN_OR_RETURN(info.metadata, checkpoint_internal::ReadMetadata(file));
  ASSIGN_OR_RETURN(
      std::vector<std::string> paths,
      checkpoint_internal::ListDatasets(file, checkpoint_internal::kTensorsGroup, kMaxTensors));
  const size_t prefix = std::string(checkpoint_internal::kTensorsGroup).size() + 1;
  for (const std::string& path : paths) {
    const std::string name = path.substr(prefix);
    RETURN_IF_ERROR(WithContext(ValidateEntryName(name), file.path));
    ASSIGN_OR_RETURN(checkpoint_internal::StoredTensor t,
                     checkpoint_internal::OpenStoredTensor(file, name));
    StoredTensorInfo out{name,
                         t.dtype,
                         t.dataset.shape,
                         t.dataset.shape.numel() * static_cast<int64_t>(DTypeSize(t.dtype)),
                         t.crc32c,
                         std::nullopt};
    if (verify) {
      ASSIGN_OR_RETURN(uint32_t crc, RecomputeCrc(file, t));
      out.crc_ok = crc == t.crc32c;
    }
    info.tensors.push_back(std::move(out));
  }
  return info;
}

}  // namespace

int64_t CheckpointInfo::tensor_bytes() const {
  int64_t total = 0;
  for (const StoredTensorInfo& t : tensors) total += t.bytes;
  return total;
}

absl::StatusOr<CheckpointInfo> InspectCheckpoint(const std::string& path, bool verify) {
  LocalCommunicator alone("inspect");
  ASSIGN_OR_RETURN(H5File file, checkpoint_internal::OpenH5File(path, alone));
  return Inspect(file, verify);
}

absl::StatusOr<CheckpointInfo> InspectCheckpointImage(absl::string_view bytes,
                                                      absl::string_view name, bool verify) {
  ASSIGN_OR_RETURN(H5File file, checkpoint_internal::OpenH5FileImage(bytes, name));
  return Inspect(file, verify);
}

}  // namespace usine
