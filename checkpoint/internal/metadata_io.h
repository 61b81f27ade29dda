// A checkpoint's metadata: one small dataset per value under /metadata, with an attribute
// `kind` (int64, double, string, json, bytes); see docs/checkpoint-format.md.
//
//   RETURN_IF_ERROR(WriteMetadata(file, plan.metadata, comm.rank() == 0));   // collective
//   ASSIGN_OR_RETURN(auto metadata, ReadMetadata(file));
//
// Same thread rule as hdf5_handle.h.
#ifndef USINE_CHECKPOINT_INTERNAL_METADATA_IO_H_
#define USINE_CHECKPOINT_INTERNAL_METADATA_IO_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "checkpoint/internal/h5_file.h"
#include "checkpoint/state_dict.h"

namespace usine::checkpoint_internal {

// Creates every value's dataset (a collective on an MPI-IO file: every rank passes the same
// map); the rank with `writes_data` writes the values.
[[nodiscard]] absl::Status WriteMetadata(const H5File& file,
                                         const std::map<std::string, MetadataValue>& metadata,
                                         bool writes_data);

// Every value under /metadata, checked (names, kinds, types, sizes up to kMaxMetadataBytes).
[[nodiscard]] absl::StatusOr<std::map<std::string, MetadataValue>> ReadMetadata(const H5File& file);

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_METADATA_IO_H_
