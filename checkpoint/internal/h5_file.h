// Opening and creating checkpoint files: the file driver for the communicator (MPI-IO for
// more than one rank, POSIX for one), the format's constants, and the checks made before a
// file from outside is handed to HDF5.
//
//   ASSIGN_OR_RETURN(H5File file, CreateH5File(tmp_path, comm));      // collective
//   ASSIGN_OR_RETURN(H5File file, OpenH5File(path, comm));            // collective
//   ASSIGN_OR_RETURN(H5File file, OpenH5FileImage(bytes));            // one process
//
// Same thread rule as hdf5_handle.h.
#ifndef USINE_CHECKPOINT_INTERNAL_H5_FILE_H_
#define USINE_CHECKPOINT_INTERNAL_H5_FILE_H_

#include <cstdint>
#include <string>

#include <hdf5.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "checkpoint/internal/hdf5_handle.h"
#include "collectives/communicator.h"

namespace usine::checkpoint_internal {

inline constexpr char kFormatName[] = "usine-checkpoint";
// Version 2: optimizer moments in their parameter's logical shape (1: flattened to 1-D), and
// tensor-parallel shards. Files of version 1 are read too (their layout is the same).
inline constexpr int64_t kFormatVersion = 2;
inline constexpr char kTensorsGroup[] = "/tensors";
inline constexpr char kMetadataGroup[] = "/metadata";

struct H5File {
  H5Handle file;
  bool mpio = false;  // Opened with the MPI-IO driver: raw data transfers are collective.
  std::string path;   // For messages.
};

// Creates (truncating) `path` for writing by every rank of `comm`. Datasets of 64 KiB and
// more start at 4 KiB boundaries; metadata uses the 1.10 format (checksummed).
[[nodiscard]] absl::StatusOr<H5File> CreateH5File(const std::string& path, Communicator& comm);

// Opens `path` read-only on every rank of `comm`, after CheckSuperblock on its first bytes.
// Metadata reads and raw data transfers are independent: ranks may open different datasets.
[[nodiscard]] absl::StatusOr<H5File> OpenH5File(const std::string& path, Communicator& comm);

// Opens an in-memory copy of a file (for fuzzing and tools), after CheckSuperblock.
[[nodiscard]] absl::StatusOr<H5File> OpenH5FileImage(absl::string_view bytes,
                                                     absl::string_view name);

// OK when `head` (a file's first bytes) starts with HDF5's signature and a superblock of
// version 2 or later, whose metadata HDF5 checksums; files of older versions are refused.
[[nodiscard]] absl::Status CheckSuperblock(absl::string_view head, absl::string_view path);

// A transfer property list: collective MPI-IO for an mpio file, the default otherwise.
[[nodiscard]] absl::StatusOr<H5Handle> TransferList(const H5File& file);

// Turns off HDF5's printing of error stacks (statuses carry them). Idempotent.
void SilenceHdf5Errors();

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_H5_FILE_H_
