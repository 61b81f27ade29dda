// Asynchronous, crash-safe checkpoints of a StateDict in a directory (checkpoint_directory.h
// for the layout, docs/checkpoint-format.md for the files).
//
//   ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Create(world.comm(), {.directory = "run/ckpt"}));
//   ...
//   RETURN_IF_ERROR(ckpt->Save(step, state));   // copies the tensors, returns; written behind
//   ...
//   ASSIGN_OR_RETURN(int64_t step, ckpt->LoadLatest(state));   // on restart
//
// Save copies every piece into host snapshot buffers (device -> pinned host, host -> host;
// the buffers are kept for the next save) and returns; a background thread then writes
// step-NNNNNNNN.h5.tmp with every rank (WriteCheckpointFile), fsyncs and renames it, fsyncs
// the directory, replaces `latest`, and applies the retention policy (rank 0). A Save that
// starts while the previous one is still writing waits for it first. The I/O thread makes
// every HDF5 call of the Checkpointer (loads included), over a communicator of its own split
// from the caller's, so collectives of the training loop and of the writer never mix.
//
// A failed save (disk full, ...) removes its temporary file and leaves the previous
// checkpoint and `latest` as they were; its error is returned by the next Wait() or Save().
//
// SaveAs writes a StateDict to a file of the caller's choosing the same way (a published
// model, for instance: `SaveAs("published/model-v0003.h5", model_only)`), without `latest`
// or retention.
//
// Save, SaveAs, Wait, LoadLatest and Load are collectives over the communicator given to Create:
// every rank calls them in the same order. Not thread-safe: one training thread calls them.
// Only one Checkpointer per process may exist at a time (HDF5 is used by its thread alone).
#ifndef USINE_CHECKPOINT_CHECKPOINTER_H_
#define USINE_CHECKPOINT_CHECKPOINTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/state_dict.h"
#include "collectives/communicator.h"

namespace usine {
namespace checkpoint_internal {
class IoThread;
}  // namespace checkpoint_internal

struct CheckpointerOptions {
  // Where the checkpoints go; created (with its parents) when missing. Required.
  std::string directory;
  RetentionPolicy retention;
  // Check CRC-32Cs on load (checkpoint_file.h). Default: true.
  bool verify_on_load = true;
};

// How long the parts of the last save took on this rank.
struct SaveTimings {
  absl::Duration snapshot;   // In Save: copying the pieces (the training loop's stall).
  absl::Duration write;      // Background: writing the file (collective), checksums included.
  absl::Duration commit;     // Background: fsync, rename, `latest`, agreement.
  absl::Duration retention;  // Background: deleting old checkpoints (rank 0).
  int64_t snapshot_bytes = 0;
};

class Checkpointer {
 public:
  // A collective over `comm`, whose host() must be an MPI communicator when it has more than
  // one rank (an MPI communicator, or an NCCL one over MPI), and need outlive only this call. Rank
  // 0 creates the directory and removes what an interrupted save left there (RemoveLeftovers).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Checkpointer>> Create(
      Communicator& comm, CheckpointerOptions options);
  // Waits for the save in flight; its error, if any, is lost (call Wait() first to see it).
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Starts checkpoint `step` of `state` (see above). Returns once the pieces are copied; the
  // caller may then change them. No collective runs in the caller's thread: the ranks agree
  // in the background (a copy that failed on one rank is an error there at once, and on the
  // others at their next Wait or Save). An error of the previous save is returned instead,
  // and this save is not started. REQUIRES: steps increase from save to save.
  [[nodiscard]] absl::Status Save(int64_t step, const StateDict& state);

  // Writes `state` to `path` like Save writes a checkpoint, asynchronously: snapshot here, then
  // on the I/O thread `path`.tmp is written by every rank, fsynced and renamed to `path`
  // (replacing a file there), and its directory fsynced (rank 0). No `latest`, no retention;
  // a failure removes the temporary and comes back from the next Wait, Save or SaveAs. Waits
  // for the save in flight first, returning its error instead of starting. REQUIRES: the
  // directory of `path` exists.
  [[nodiscard]] absl::Status SaveAs(const std::string& path, const StateDict& state);

  // Blocks until the save in flight (if any) is committed; returns its status.
  [[nodiscard]] absl::Status Wait();

  // Fills `state` (checkpoint_file.h's ReadCheckpointFile, pieces on any device) from the
  // checkpoint that `latest` names and returns its step; NotFound when there is none. Waits
  // for a save in flight first, and returns its error if it failed. Every rank returns the
  // same outcome: also a failure of one rank's own work (staging device pieces in pinned
  // memory, copying them back) is every rank's ("<communicator> rank R: ...").
  [[nodiscard]] absl::StatusOr<int64_t> LoadLatest(StateDict& state);
  // The same from the checkpoint file at `path`.
  [[nodiscard]] absl::Status Load(const std::string& path, StateDict& state);

  const std::string& directory() const { return options_.directory; }
  // Of the last save (complete once Wait() has returned).
  SaveTimings last_save_timings() const;

 private:
  Checkpointer(std::unique_ptr<Communicator> io_comm, CheckpointerOptions options);
  // The host buffer for piece `index` of entry `name` (pinned for a device piece), kept from
  // call to call: saves snapshot into it, loads of device pieces stage through it.
  absl::StatusOr<Tensor> HostBuffer(const std::string& name, size_t index, const Tensor& piece);
  // The host copy of `state` in host buffers. REQUIRES: no save in flight (io_->Wait()).
  absl::StatusOr<StateDict> Snapshot(const StateDict& state);
  // Frees the host buffers of entries that `state` does not have (after a Save: a SaveAs of
  // a part of the state keeps the others' buffers).
  void DropOtherBuffers(const StateDict& state);
  // Snapshots `state` and submits `write` with the snapshot to the I/O thread, after the
  // ranks agreed that every snapshot succeeded.
  absl::Status Submit(const StateDict& state,
                      std::function<absl::Status(const StateDict& snapshot)> write);
  // Run on the I/O thread: write, commit, retention; write and commit.
  absl::Status WriteAndCommit(int64_t step, const StateDict& snapshot);
  absl::Status WriteAndRename(const std::string& path, const StateDict& snapshot);

  std::unique_ptr<Communicator> io_comm_;  // Used on the I/O thread only.
  CheckpointerOptions options_;
  // HostBuffer's, by entry name, one per piece.
  std::map<std::string, std::vector<Tensor>> host_buffers_;
  mutable absl::Mutex timings_mu_;
  SaveTimings timings_ ABSL_GUARDED_BY(timings_mu_);
  std::unique_ptr<checkpoint_internal::IoThread> io_;  // Last: joined first.
};

}  // namespace usine

#endif  // USINE_CHECKPOINT_CHECKPOINTER_H_
