// The incoming side of DataStream's watch mode: takes the shards that land in a watched
// directory one at a time, each once, with every rank of the job agreeing on which.
//
// Rank 0 of `comm` decides: it lists the directory and names the first landed shard (in
// bytewise name order) that is neither consumed nor current; the others open the shard it
// names, waiting up to `arrival_grace` for it to appear on their view of a shared file system.
// Each round is one all-gather on `comm` of every rank's "I am closing" and rank 0's
// decision; a named shard then takes one more exchange, in which the ranks agree on what they
// opened (OpenEverywhere), so that no rank trains on a shard another skips. So every rank
// must run the same sequence of Take() calls (they
// do: the calls follow the global batch sequence; a closing rank plans on to its next one,
// BatchPlanner::Abandon), and `comm` must carry nothing else. With a null comm (a job of
// one) there are no collectives.
//
// Thread-compatible: Take() runs on DataStream's prefetch thread.
#ifndef USINE_RUNTIME_DATA_INTERNAL_INCOMING_SHARDS_H_
#define USINE_RUNTIME_DATA_INTERNAL_INCOMING_SHARDS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "runtime/data/directory_watcher.h"
#include "runtime/data/token_shard.h"

namespace usine::data_internal {

struct IncomingOptions {
  std::string directory;
  WatchMethod method = WatchMethod::kAuto;
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration arrival_grace = absl::Seconds(60);
  absl::Duration report_every = absl::Seconds(60);  // "waiting for new shards" while idle
  int64_t vocab_size = 0;
  Communicator* comm = nullptr;  // not owned; null for a job of one
};

struct IncomingShard {
  std::string name;
  std::shared_ptr<const TokenShard> shard;  // null when rejected
  std::string rejection;                    // why the file is not a valid shard
};

class IncomingShards {
 public:
  // `consumed`: names never to take again (a restored state's list).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<IncomingShards>> Open(
      IncomingOptions options, const std::vector<std::string>& consumed);

  // Opens the shard `name` of the directory on this rank (no collective), waiting up to
  // arrival_grace for it to appear, or until `closing` is set (then kCancelled); a malformed
  // file comes back with its rejection. A restored state reopens the shard it was reading so
  // (DataStream::Open then agrees on what each rank opened).
  [[nodiscard]] absl::StatusOr<IncomingShard> OpenShard(const std::string& name,
                                                        const std::atomic<bool>& closing) const;

  // OpenShard on every rank, then one outcome for all (a collective on `comm`): a rank's
  // error is every rank's ("<communicator> rank R: ..."), its kCancelled too (it closed while
  // waiting for the file); a file every rank rejects is rejected; a file that every rank reads with
  // the same token count is taken. Any other mix -- rank 0 reads a shard that another rejects, or
  // counts other tokens in -- means the ranks' views of the directory differ, and is
  // Unavailable on every rank, naming both views.
  [[nodiscard]] absl::StatusOr<IncomingShard> OpenEverywhere(
      const std::string& name, const std::atomic<bool>& closing) const;

  // One agreement round, repeated every poll interval while `wait` and nothing is ready.
  // Returns the next shard (added to the consumed set), an empty name when none is ready and
  // !wait, or kCancelled once any rank has set its `closing`.
  [[nodiscard]] absl::StatusOr<IncomingShard> Take(bool wait, const std::atomic<bool>& closing);

  // Whether Take() agrees with other ranks (a comm of more than one rank).
  bool HasPeers() const { return options_.comm != nullptr && options_.comm->size() > 1; }

 private:
  IncomingShards(IncomingOptions options, std::unique_ptr<DirectoryWatcher> watcher)
      : options_(std::move(options)), watcher_(std::move(watcher)) {}

  // Rank 0's choice: a name, or empty.
  [[nodiscard]] absl::StatusOr<std::string> Choose() const;
  // All ranks: rank 0's `name` (or its error) on every rank; kCancelled if any is closing.
  [[nodiscard]] absl::StatusOr<std::string> Agree(bool closing, absl::StatusOr<std::string> name);

  IncomingOptions options_;
  std::unique_ptr<DirectoryWatcher> watcher_;  // rank 0 only
  absl::flat_hash_set<std::string> taken_;
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_INCOMING_SHARDS_H_
