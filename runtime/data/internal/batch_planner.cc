#include "runtime/data/internal/batch_planner.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/internal/shuffle.h"

namespace usine::data_internal {
namespace {

int64_t SamplesIn(const TokenShard& shard, int64_t seq_len) {
  return std::max<int64_t>(0, (shard.size() - 1) / seq_len);
}

absl::Status Mismatch(absl::string_view what, const auto& saved, const auto& now) {
  return absl::FailedPreconditionError(absl::StrCat("data stream state was saved with ", what, " ",
                                                    saved, " but this stream has ", now));
}

}  // namespace

uint64_t DatasetFingerprint(const std::vector<TokenShard>& shards) {
  std::string key;
  for (const TokenShard& shard : shards) {
    const std::string& path = shard.path();
    absl::StrAppend(&key, path.substr(path.find_last_of('/') + 1), ":", shard.size(), ";");
  }
  return HashBytes(key);
}

BatchPlanner::BatchPlanner(PlannerOptions options, std::vector<TokenShard> base,
                           std::unique_ptr<IncomingShards> incoming, std::vector<int64_t> counts)
    : options_(options),
      base_(std::move(base)),
      incoming_(std::move(incoming)),
      order_(std::move(counts), options.seed, options.shuffle) {
  state_.seed = options_.seed;
  state_.seq_len = options_.seq_len;
  state_.dataset = DatasetFingerprint(base_);
}

absl::StatusOr<std::unique_ptr<BatchPlanner>> BatchPlanner::Create(
    PlannerOptions options, std::vector<TokenShard> base, std::unique_ptr<IncomingShards> incoming,
    const DataStreamState* resume) {
  std::vector<int64_t> counts;
  for (const TokenShard& shard : base) counts.push_back(SamplesIn(shard, options.seq_len));
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  const bool needs_base =
      incoming == nullptr || options.replay_ratio > 0 || options.replay_when_idle;
  if (needs_base && total == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data stream: no base shard (of ", base.size(), ") holds a full sample of T+1 = ",
        options.seq_len + 1, " tokens", incoming != nullptr ? ", which replay needs" : ""));
  }
  std::unique_ptr<BatchPlanner> planner(
      new BatchPlanner(options, std::move(base), std::move(incoming), std::move(counts)));
  if (resume == nullptr) return planner;

  const DataStreamState& fresh = planner->state_;
  if (resume->seed != fresh.seed) return Mismatch("seed", resume->seed, fresh.seed);
  if (resume->seq_len != fresh.seq_len) return Mismatch("seq_len", resume->seq_len, fresh.seq_len);
  if (resume->dataset != fresh.dataset) {
    return Mismatch("base dataset fingerprint", resume->dataset,
                    absl::StrCat(fresh.dataset, " (shards or their sizes differ)"));
  }
  if (resume->epoch < 0 || resume->offset < 0 || (total > 0 && resume->offset >= total)) {
    return absl::InvalidArgumentError(absl::StrCat("data stream state: position epoch ",
                                                   resume->epoch, " offset ", resume->offset,
                                                   " outside an epoch of ", total, " samples"));
  }
  planner->state_ = *resume;
  if (resume->current.empty()) return planner;
  if (planner->incoming_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data stream state is reading incoming shard ", resume->current, " but watch is off"));
  }
  const std::atomic<bool> never_closing{false};  // Open has no Close to end a wait.
  ASSIGN_OR_RETURN(IncomingShard shard,
                   planner->incoming_->OpenShard(resume->current, never_closing));
  if (shard.shard == nullptr) {
    return absl::DataLossError(
        absl::StrCat("resuming incoming shard ", shard.name, ": ", shard.rejection));
  }
  planner->state_.current.clear();
  RETURN_IF_ERROR(planner->StartIncoming(std::move(shard)));
  if (resume->current_offset < 0 ||
      resume->current_offset >= static_cast<int64_t>(planner->current_order_.size())) {
    return absl::DataLossError(absl::StrCat(
        "resuming incoming shard ", resume->current, ": it holds ", planner->current_order_.size(),
        " samples, the state had read ", resume->current_offset));
  }
  planner->state_.current_offset = resume->current_offset;
  return planner;
}

std::string BatchPlanner::OpenedData() const {
  std::string opened = absl::StrCat("base dataset ", absl::Hex(state_.dataset, absl::kZeroPad16));
  if (current_ != nullptr) {
    absl::StrAppend(&opened, ", incoming shard ", state_.current, " of ", current_->size(),
                    " tokens");
  }
  return opened;
}

SampleSpan BatchPlanner::NextBaseSample() {
  const SampleRef ref = order_.At(state_.epoch, state_.offset);
  if (++state_.offset == order_.samples_per_epoch()) {
    ++state_.epoch;
    state_.offset = 0;
  }
  return {&base_[ref.shard], ref.sample * options_.seq_len};
}

absl::Status BatchPlanner::StartIncoming(IncomingShard shard) {
  if (shard.shard == nullptr) {
    USINE_LOG(WARNING) << "skipping incoming shard " << shard.name << ": " << shard.rejection;
    state_.consumed.push_back(shard.name);
    return absl::OkStatus();
  }
  const int64_t count = SamplesIn(*shard.shard, options_.seq_len);
  if (count == 0) {
    USINE_LOG(WARNING) << "skipping incoming shard " << shard.name << ": " << shard.shard->size()
                       << " tokens, fewer than a sample of " << options_.seq_len + 1;
    state_.consumed.push_back(shard.name);
    return absl::OkStatus();
  }
  if (options_.shuffle) {
    current_order_ = Permutation(count, MixKey({options_.seed, HashBytes(shard.name)}));
  } else {
    current_order_.resize(count);
    std::iota(current_order_.begin(), current_order_.end(), 0u);
  }
  current_ = std::move(shard.shard);
  state_.current = std::move(shard.name);
  state_.current_offset = 0;
  return absl::OkStatus();
}

absl::StatusOr<bool> BatchPlanner::EnsureIncoming(bool wait, const std::atomic<bool>& closing) {
  while (current_ == nullptr) {
    ASSIGN_OR_RETURN(IncomingShard shard, incoming_->Take(wait, closing));
    if (shard.name.empty()) return false;
    RETURN_IF_ERROR(StartIncoming(std::move(shard)));
  }
  return true;
}

SampleSpan BatchPlanner::NextIncomingSample() {
  const SampleSpan span{current_.get(), current_order_[state_.current_offset] * options_.seq_len};
  ++state_.incoming_samples;
  if (++state_.current_offset == static_cast<int64_t>(current_order_.size())) {
    state_.consumed.push_back(std::move(state_.current));
    state_.current.clear();
    state_.current_offset = 0;
    current_.reset();  // the batch keeps it open until it is copied
  }
  return span;
}

absl::Status BatchPlanner::Next(const std::atomic<bool>& closing, GlobalBatch* batch) {
  batch->samples.clear();
  batch->incoming.clear();
  bool idle = false;  // no incoming shard was ready: replay for the rest of this batch
  for (int64_t i = 0; i < options_.global_batch; ++i) {
    if (incoming_ == nullptr) {
      batch->samples.push_back(NextBaseSample());
      continue;
    }
    const int64_t seen = state_.incoming_samples + state_.replay_samples;
    bool replay = options_.replay_ratio > 0 &&
                  static_cast<double>(state_.replay_samples) < options_.replay_ratio * (seen + 1);
    if (!replay && !idle) {
      ASSIGN_OR_RETURN(bool ready, EnsureIncoming(!options_.replay_when_idle, closing));
      idle = !ready;
    }
    if (replay || idle) {
      batch->samples.push_back(NextBaseSample());
      ++state_.replay_samples;
      continue;
    }
    if (batch->incoming.empty() || batch->incoming.back() != current_) {
      batch->incoming.push_back(current_);
    }
    batch->samples.push_back(NextIncomingSample());
  }
  ++state_.batches;
  state_.samples += options_.global_batch;
  batch->state = state_;
  return absl::OkStatus();
}

absl::Status BatchPlanner::Abandon() {
  if (incoming_ == nullptr || !incoming_->HasPeers()) return absl::OkStatus();
  // Each batch planned here is bounded (a round comes once the current shard is used up,
  // and that round ends at once: this rank says it is closing).
  const std::atomic<bool> closed{true};
  GlobalBatch dropped;
  absl::Status planned;
  while ((planned = Next(closed, &dropped)).ok()) {
  }
  return planned;
}

}  // namespace usine::data_internal
