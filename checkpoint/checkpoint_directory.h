// A directory of checkpoints: committed files `step-<step, 8 digits or more>.h5`, the file
// `latest` naming the newest complete one, and nothing else that usine writes except
// temporaries (`*.h5.tmp` while a checkpoint is written, `latest.tmp.<pid>` while `latest`
// is replaced), which a crash may leave and RemoveLeftovers deletes.
//
//   RETURN_IF_ERROR(CommitCheckpoint(dir, 1200));        // step-00001200.h5.tmp -> .h5, latest
//   ASSIGN_OR_RETURN(int64_t step, ReadLatestStep(dir));  // 1200
//   ASSIGN_OR_RETURN(auto deleted, ApplyRetention(dir, {.keep_last = 3, .keep_every = 1000}));
//
// Crash safety: a checkpoint appears under its final name only once its bytes are on disk
// (fsync, rename, fsync of the directory), and `latest` is replaced atomically after that;
// so at any moment `latest` names a complete file, which retention never deletes.
// For one process at a time per directory (the Checkpointer runs these on rank 0); errors
// name the file.
#ifndef USINE_CHECKPOINT_CHECKPOINT_DIRECTORY_H_
#define USINE_CHECKPOINT_CHECKPOINT_DIRECTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"

namespace usine {

struct RetentionPolicy {
  // The newest checkpoints kept. Default: 3. Values below 1 count as 1.
  int keep_last = 3;
  // Checkpoints whose step is a multiple of this are kept for good; 0: none. Default: 0.
  int64_t keep_every = 0;
};

// "step-00001200.h5".
std::string CheckpointFileName(int64_t step);
// dir + "/" + CheckpointFileName(step) + ".tmp": where a checkpoint is written before commit.
std::string TemporaryCheckpointPath(const std::string& dir, int64_t step);
// dir + "/" + CheckpointFileName(step).
std::string CheckpointPath(const std::string& dir, int64_t step);

// Makes the written temporary of `step` the committed checkpoint and points `latest` at it.
[[nodiscard]] absl::Status CommitCheckpoint(const std::string& dir, int64_t step);

// Makes the written file `temporary` appear as `path` (same directory), with the crash safety
// above: fsync, rename (replacing a file there), fsync of the directory. CommitCheckpoint's
// first half; Checkpointer::SaveAs's commit.
[[nodiscard]] absl::Status CommitFile(const std::string& temporary, const std::string& path);

// The checkpoint file that `path` names: a file, as it is; a directory holding `latest` (a
// Checkpointer's directory), the checkpoint `latest` names; a directory holding
// checkpoints/latest (a run directory of the Trainer), that one. NotFound, naming the path,
// for a missing path or a directory with neither; the errors of ReadLatestStep.
[[nodiscard]] absl::StatusOr<std::string> ResolveCheckpointPath(const std::string& path);

// ResolveCheckpointPath on rank 0 of `comm`, and its answer (or error) on every rank, so that
// all load the same file while a run may be moving `latest`. A collective over `comm`.
[[nodiscard]] absl::StatusOr<std::string> ResolveCheckpointPathOnRankZero(Communicator& comm,
                                                                          const std::string& path);

// The step that `latest` names: NotFound when there is no `latest`, InvalidArgument when it
// does not hold a checkpoint file name.
[[nodiscard]] absl::StatusOr<int64_t> ReadLatestStep(const std::string& dir);

// The steps of the committed checkpoints in `dir`, ascending.
[[nodiscard]] absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& dir);

// Deletes the committed checkpoints that `policy` does not keep, never the one `latest`
// names. Returns the deleted steps.
[[nodiscard]] absl::StatusOr<std::vector<int64_t>> ApplyRetention(const std::string& dir,
                                                                  const RetentionPolicy& policy);

// Deletes the temporaries that an interrupted save left. Returns how many.
[[nodiscard]] absl::StatusOr<int> RemoveLeftovers(const std::string& dir);

}  // namespace usine

#endif  // USINE_CHECKPOINT_CHECKPOINT_DIRECTORY_H_
