// The checks that make an HDF5 file a usine checkpoint, and the reading of its tensors:
// the root attributes (format name and version), and each tensor dataset's dtype, shape and
// recorded CRC-32C. Errors name the file and the dataset.
//
//   ASSIGN_OR_RETURN(FormatInfo info, CheckFormat(file));
//   ASSIGN_OR_RETURN(StoredTensor t, OpenStoredTensor(file, "h0.mlp.fc.w"));
//   RETURN_IF_ERROR(ReadBox(file, t, offset, extent, piece.raw_data()));
//
// Same thread rule as hdf5_handle.h.
#ifndef USINE_CHECKPOINT_INTERNAL_STORED_TENSOR_H_
#define USINE_CHECKPOINT_INTERNAL_STORED_TENSOR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/h5_objects.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace usine::checkpoint_internal {

struct FormatInfo {
  int64_t version = 0;
  int64_t world_size = 0;  // Of the job that wrote it.
};

// OK for a usine checkpoint of a format version this build reads.
[[nodiscard]] absl::StatusOr<FormatInfo> CheckFormat(const H5File& file);

struct StoredTensor {
  std::string name;
  std::string path;  // "/tensors/<name>"
  CheckedDataset dataset;
  DType dtype = DType::kF32;
  uint32_t crc32c = 0;
};

// The tensor `name`: NotFound when the file has none, InvalidArgument when its dataset is
// not one that usine writes.
[[nodiscard]] absl::StatusOr<StoredTensor> OpenStoredTensor(const H5File& file,
                                                            absl::string_view name);

// Reads the box at `offset` with extents `extent` into `out` (row-major, contiguous), with
// an independent transfer. REQUIRES: the box lies inside the tensor.
[[nodiscard]] absl::Status ReadBox(const H5File& file, const StoredTensor& tensor,
                                   absl::Span<const int64_t> offset, const Shape& extent,
                                   void* out);

// Where the tensor's bytes lie in the file, for reads that bypass HDF5 (pread): the address
// of its contiguous storage, in a file without a user block. nullopt for storage elsewhere
// (compact: in the object header) or a user block; then ReadBox. The bytes are those of
// memory: the file type is FileTypeOf(dtype) (OpenStoredTensor checks it). DataLoss when the
// storage does not lie inside the file.
[[nodiscard]] absl::StatusOr<std::optional<uint64_t>> RawDataAddress(const H5File& file,
                                                                     const StoredTensor& tensor);

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_STORED_TENSOR_H_
