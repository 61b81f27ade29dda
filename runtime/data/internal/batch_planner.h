// Decides the global sample sequence of DataStream, one global batch (the samples of all
// data-parallel ranks together) at a time, and keeps the DataStreamState that resumes it.
//
// A sample is T+1 consecutive tokens of a shard: sample j of a shard is its tokens
// [j*T, j*T + T + 1), so a shard of n tokens holds (n - 1) / T samples and the few tokens
// after its last sample are not used. The inputs are a sample's first T tokens, the targets
// its last T.
//
// Without incoming shards the sequence is the base dataset's EpochOrder, epoch after epoch.
// With them (watch mode), each position takes the next sample of the current incoming shard
// (its samples shuffled by a key of the seed and its name), except that a base sample is
// replayed when replay_samples < replay_ratio * (samples so far + 1), and whenever no incoming
// shard is ready and the stream is configured to replay while idle. Every rank computes the
// same global batches from the same state; each keeps only its own slice.
//
// Thread-compatible: DataStream's prefetch thread owns it.
#ifndef USINE_RUNTIME_DATA_INTERNAL_BATCH_PLANNER_H_
#define USINE_RUNTIME_DATA_INTERNAL_BATCH_PLANNER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "runtime/data/data_stream_state.h"
#include "runtime/data/internal/epoch_order.h"
#include "runtime/data/internal/incoming_shards.h"
#include "runtime/data/token_shard.h"

namespace usine::data_internal {

struct PlannerOptions {
  int64_t global_batch = 0;  // samples per global batch
  int64_t seq_len = 0;       // T
  uint64_t seed = 0;
  bool shuffle = true;
  double replay_ratio = 0;        // watch mode: the share of base samples, in [0, 1)
  bool replay_when_idle = false;  // watch mode: replay instead of waiting for new shards
};

// T+1 tokens of `shard` starting at token `begin`.
struct SampleSpan {
  const TokenShard* shard = nullptr;
  int64_t begin = 0;
};

struct GlobalBatch {
  std::vector<SampleSpan> samples;  // global_batch of them
  // The incoming shards that `samples` point into, kept open until the batch is copied.
  std::vector<std::shared_ptr<const TokenShard>> incoming;
  DataStreamState state;  // after this batch
};

class BatchPlanner {
 public:
  // `base`: the base dataset (may be empty in watch mode). `incoming`: null unless watching.
  // `resume`: a state to continue from, checked against the options and the data.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BatchPlanner>> Create(
      PlannerOptions options, std::vector<TokenShard> base,
      std::unique_ptr<IncomingShards> incoming, const DataStreamState* resume);

  // Makes *batch the next global batch, reusing its memory. In watch mode it may wait for a
  // shard to land; kCancelled when any rank set `closing`.
  [[nodiscard]] absl::Status Next(const std::atomic<bool>& closing, GlobalBatch* batch);

  // Closing with other ranks (IncomingShards::HasPeers()): plans on, dropping the batches, to
  // the next agreement round and says there that this rank is closing, so that the others
  // end that round with kCancelled. They are in it or will reach it, for every rank takes the
  // same rounds; a rank that stopped planning without this would leave them waiting there
  // forever. Blocks until every rank has reached the round (every rank must close, or read
  // on to it). Returns the round's kCancelled, or the error that ended it; OK at once
  // without peers. REQUIRES: no Next() after it, nor after a Next() that failed.
  [[nodiscard]] absl::Status Abandon();

  const DataStreamState& state() const { return state_; }
  int64_t base_samples_per_epoch() const { return order_.samples_per_epoch(); }
  // What this rank opened and plans from, in words that are equal on two ranks when they
  // plan the same batches: the base dataset's fingerprint, and the incoming shard being read
  // (resumed) with its token count.
  std::string OpenedData() const;

 private:
  BatchPlanner(PlannerOptions options, std::vector<TokenShard> base,
               std::unique_ptr<IncomingShards> incoming, std::vector<int64_t> counts);

  SampleSpan NextBaseSample();
  // Makes `current_` a shard with samples left; false when none is ready and !wait.
  [[nodiscard]] absl::StatusOr<bool> EnsureIncoming(bool wait, const std::atomic<bool>& closing);
  [[nodiscard]] absl::Status StartIncoming(IncomingShard shard);
  SampleSpan NextIncomingSample();

  PlannerOptions options_;
  std::vector<TokenShard> base_;
  std::unique_ptr<IncomingShards> incoming_;
  EpochOrder order_;
  DataStreamState state_;

  std::shared_ptr<const TokenShard> current_;  // state_.current, open
  std::vector<uint32_t> current_order_;        // its samples, in visiting order
};

// The fingerprint of a base dataset that DataStreamState::dataset records.
uint64_t DatasetFingerprint(const std::vector<TokenShard>& shards);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_BATCH_PLANNER_H_
