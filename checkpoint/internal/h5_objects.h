// Reading objects from a checkpoint file that may come from anywhere: every link on the way
// must be a hard link (no soft or external links, which could reach other files), and a
// dataset must be plain (contiguous or compact storage in this file, no filters, no
// external raw data, a simple dataspace of at most kMaxRank dimensions). Errors name the
// file and the object. Writing helpers for attributes and groups are here too.
//
//   ASSIGN_OR_RETURN(CheckedDataset d, OpenCheckedDataset(file, "/tensors/wte"));
//   ASSIGN_OR_RETURN(int64_t version, ReadInt64Attribute(file, root, "/", "format_version"));
//
// Same thread rule as hdf5_handle.h.
#ifndef USINE_CHECKPOINT_INTERNAL_H5_OBJECTS_H_
#define USINE_CHECKPOINT_INTERNAL_H5_OBJECTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <hdf5.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/hdf5_handle.h"
#include "runtime/core/shape.h"

namespace usine::checkpoint_internal {

inline constexpr int kMaxRank = 16;

struct CheckedDataset {
  H5Handle dataset;
  H5Handle type;
  Shape shape;  // Rank 0 for a scalar dataspace.
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t type_size = 0;
};

// Opens the dataset at absolute `path` after the checks above.
[[nodiscard]] absl::StatusOr<CheckedDataset> OpenCheckedDataset(const H5File& file,
                                                                const std::string& path);

// OK when every component of absolute `path` is a hard link; NotFound when one is missing.
[[nodiscard]] absl::Status CheckHardLinks(const H5File& file, const std::string& path);

// The absolute paths of the datasets under group `group` (recursively, sorted), each
// reached by hard links only; at most `max_count`.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ListDatasets(const H5File& file,
                                                                    const std::string& group,
                                                                    size_t max_count);

// Attributes of object `object` (named `where` in messages).
[[nodiscard]] absl::StatusOr<int64_t> ReadInt64Attribute(const H5File& file, hid_t object,
                                                         absl::string_view where, const char* name);
[[nodiscard]] absl::StatusOr<uint32_t> ReadUint32Attribute(const H5File& file, hid_t object,
                                                           absl::string_view where,
                                                           const char* name);
[[nodiscard]] absl::StatusOr<std::string> ReadStringAttribute(const H5File& file, hid_t object,
                                                              absl::string_view where,
                                                              const char* name);
[[nodiscard]] absl::Status WriteInt64Attribute(hid_t object, const char* name, int64_t value);
[[nodiscard]] absl::Status WriteUint32Attribute(hid_t object, const char* name, uint32_t value);
[[nodiscard]] absl::Status WriteStringAttribute(hid_t object, const char* name,
                                                absl::string_view value);

// A fixed-length UTF-8 string type of max(1, size) bytes, padded with NULs.
[[nodiscard]] absl::StatusOr<H5Handle> StringType(size_t size);

// Selects the box at `offset` with extents `extent` in dataspace `space` (all of a scalar).
[[nodiscard]] absl::Status SelectBox(hid_t space, absl::Span<const int64_t> offset,
                                     const Shape& extent);

// A link creation list that creates missing intermediate groups.
[[nodiscard]] absl::StatusOr<H5Handle> IntermediateGroupsList();

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_H5_OBJECTS_H_
