// DataStream: token batches for training, read from token shards by fill threads, one
// slice of each global batch per data-parallel rank, resumable to the exact sample.
//
//   DataStreamOptions options;
//   options.shards = {"data/brown/train_r0000_000000.bin", ...};
//   options.batch_size = 8;  options.seq_len = 1024;
//   options.dp_rank = grid.dp_rank();  options.dp_size = grid.dp_size();
//   ASSIGN_OR_RETURN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
//   ASSIGN_OR_RETURN(Batch batch, stream->Next(copy_stream));  // batch.tokens: u16[B, T+1]
//   checkpoint.data_state = stream->state().ToJson();             // after that batch
//
// A batch is B samples of T+1 consecutive tokens, one row each: the inputs of row b are
// tokens[b][0..T), its targets tokens[b][1..T]. They are 16-bit ids (kU16) when vocab_size
// <= 65536, as for GPT-2, else kI32: the narrowest type, so that a batch costs one copy per
// row from the mapped shard, like read(2), and the least host-to-device traffic.
//
// Order. internal/batch_planner.h says which tokens form sample j of a shard. The global
// sequence of samples is a function of the seed and the data only: each epoch visits the
// shards in a seeded random order and each shard's samples in a seeded random order (file
// order when `shuffle` is off). Global batch k is the dp_size * batch_size samples after the
// first k global batches, and DP rank r takes the r-th run of batch_size of them. So ranks
// read disjoint samples, TP ranks of one DP group (same dp_rank) get identical batches, and a
// state saved at one DP size resumes at another: the sequence continues, no sample skipped
// or repeated (with the same global batch size, also the same global batches).
//
// Watch mode (`watch` set): the stream takes the shards that land in a directory
// (directory_watcher.h has the landing protocol), each exactly once, also across restarts
// (the state lists them), mixing in base samples at `replay_ratio`. When no new shard is
// ready it waits, logging that it does, or replays base samples, by `replay_when_idle`. With
// more than one rank, `comm` must span every rank that reads the stream (all DP and TP ranks)
// and carry nothing else (e.g. world.comm().Split(0, rank, "data")): rank 0 decides which
// shard comes next and tells the others.
//
// Memory. Fill threads fill up to `prefetch` batches ahead into pinned host buffers
// (PinnedHostAllocator). On the cpu a Batch's tensors point into its buffer, which returns to
// the pool when the last copy of the Batch is destroyed; hold no more than `prefetch` batches
// or the thread stalls. On a CUDA device Next() copies the buffer to device memory
// asynchronously on the caller's stream and the buffer is reused once that copy is done.
//
// Thread-safety: Next() and state() are for one consumer thread; Close() may come from
// others (it ends a blocked Next()). Errors of the fill threads (a shard that vanished,
// a failed collective) are returned by Next().
#ifndef USINE_RUNTIME_DATA_DATA_STREAM_H_
#define USINE_RUNTIME_DATA_DATA_STREAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "runtime/data/data_stream_state.h"
#include "runtime/data/directory_watcher.h"

namespace usine {

struct WatchOptions {
  std::string directory;
  WatchMethod method = WatchMethod::kAuto;
  // Share of the samples taken from the base dataset (options.shards), in [0, 1). Default: 0.
  double replay_ratio = 0;
  // When no new shard is ready: replay base samples (true) or wait (false). Default: wait.
  bool replay_when_idle = false;
  // How often the directory is checked while waiting (inotify wakes sooner). Default: 1 s.
  absl::Duration poll_interval = absl::Seconds(1);
  // How long a rank waits for the shard rank 0 names to appear in its own view of the
  // directory (a shared file system's hosts may lag); then every rank's Next() fails.
  // Default: 60 s.
  absl::Duration arrival_grace = absl::Seconds(60);
};

struct DataStreamOptions {
  // The base dataset: token shards, in any order (they are sorted by file name). Required
  // unless watching without replay.
  std::vector<std::string> shards;
  int64_t vocab_size = 50257;  // every token must be below it
  int64_t batch_size = 0;      // B: samples per DP rank per batch. Required.
  int64_t seq_len = 0;         // T: tokens per input row. Required.
  int dp_rank = 0;
  int dp_size = 1;
  uint64_t seed = 1337;
  bool shuffle = true;
  int prefetch = 4;  // batches filled ahead, 1 to 63. Default: 4.
  // Threads that fill batches (copy the samples' tokens); no more than `prefetch` run. The
  // batches do not depend on it. More than one pays off with spare cores and data larger than
  // the caches (docs/BENCHMARKS.md); on 2 cores one is faster. Default: 1.
  int fill_threads = 1;
  Device device = Device::Cpu();  // where Next() puts the batches
  std::optional<WatchOptions> watch;
  Communicator* comm = nullptr;  // watch mode with several ranks; not owned
};

struct Batch {
  Tensor tokens;                 // u16 or i32 [B, T+1] on options.device (see above)
  int64_t index = 0;             // this global batch's number, from 0 at the first run
  int64_t incoming_samples = 0;  // samples from incoming shards so far (watch mode)
  std::shared_ptr<void> buffer;  // the host buffer the tensors use (cpu)
};

class DataStream {
 public:
  // Opens and validates the shards and starts the fill threads. `resume`: continue from
  // this state (an error if it was saved with another seed, seq_len or base dataset). In
  // watch mode with a `comm`, a collective on it: a failure on any rank (a base shard this
  // rank cannot read, the incoming shard it was reading gone) fails Open on every rank, other
  // ranks' with "<communicator> rank R: " before the message; so do ranks that opened different
  // data (another base dataset, or the resumed incoming shard with another token count:
  // kUnavailable).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DataStream>> Open(
      DataStreamOptions options, const DataStreamState* resume = nullptr);
  DataStream(const DataStream&) = delete;
  DataStream& operator=(const DataStream&) = delete;
  ~DataStream();  // Close()

  // The next batch; blocks until the fill threads have it. For a CUDA device the copy is
  // enqueued on `stream`, a stream of that device (InvalidArgument otherwise), or without one
  // on the device's default stream, which work on a stream of Stream::Create does not wait for:
  // a consumer on such a stream passes it. kCancelled after Close().
  [[nodiscard]] absl::StatusOr<Batch> Next();
  [[nodiscard]] absl::StatusOr<Batch> Next(const Stream& stream);

  // The state after the last batch Next() returned (the opening state before the first).
  const DataStreamState& state() const;

  // Samples in one epoch of the base dataset.
  int64_t samples_per_epoch() const;

  // Stops the fill threads; a blocked Next() returns kCancelled at once. In watch mode with
  // several ranks every rank must close (the destructor does), at any point: ranks agree on
  // closing in their next decision round, which a closing rank plans on to (without filling
  // batches). So Close() returns once every other rank has closed or read on to that round.
  // Safe to call from several threads at once.
  void Close();

 private:
  class Impl;
  explicit DataStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_DATA_STREAM_H_
