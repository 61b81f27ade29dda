// One checkpoint file (docs/checkpoint-format.md): every tensor of a StateDict as one HDF5
// dataset of its global shape, written by all ranks in parallel, read back at any layout.
// Checkpointer (checkpoint/checkpointer.h) adds the background thread, the atomic commit and
// retention; these are the synchronous operations under it.
//
//   RETURN_IF_ERROR(WriteCheckpointFile("ckpt/step-00000100.h5.tmp", state, comm));
//   RETURN_IF_ERROR(ReadCheckpointFile("ckpt/step-00000100.h5", wanted, comm));
//
// Both are collectives over `comm` (every rank calls them; byte_exchange.h's contract) and
// make HDF5 calls, which must all come from one thread of the process (HDF5 1.10 as built by
// Debian is not thread-safe). More than one rank needs an MPI communicator (MPI-IO); one
// rank uses POSIX I/O. Pieces must be host tensors. Errors name the file, the dataset and,
// where it matters, the rank; every rank returns the same status.
#ifndef USINE_CHECKPOINT_CHECKPOINT_FILE_H_
#define USINE_CHECKPOINT_CHECKPOINT_FILE_H_

#include <string>

#include "absl/status/status.h"

#include "checkpoint/state_dict.h"
#include "collectives/communicator.h"

namespace usine {

// Creates `path` (replacing a file there) holding `state`: the union of the ranks' tensors
// and metadata. Each distinct box is written by the lowest rank that holds it; each dataset
// gets the CRC-32C of its whole logical tensor. REQUIRES: the ranks' boxes of each tensor
// tile it. On error the file may be left partial: the caller removes it.
[[nodiscard]] absl::Status WriteCheckpointFile(const std::string& path, const StateDict& state,
                                               Communicator& comm);

struct ReadOptions {
  // Check each tensor against its CRC-32C when the ranks together read all of it. Default: true.
  bool verify_checksums = true;
};

// Fills every piece of `state` (its box of the named tensor, whose global shape and dtype
// must be those in the file) and replaces state's metadata with the file's. Each rank reads
// only its boxes: boxes of whole rows with pread over the cpu's threads (ParallelFor), others
// through HDF5. A file that is not a usine checkpoint, or is damaged, is an error.
[[nodiscard]] absl::Status ReadCheckpointFile(const std::string& path, StateDict& state,
                                              Communicator& comm, const ReadOptions& options = {});

}  // namespace usine

#endif  // USINE_CHECKPOINT_CHECKPOINT_FILE_H_
