#include "runtime/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/train_step.h"

namespace usine {

double EvalResult::perplexity() const { return std::exp(loss); }

namespace {

// The first failure among the ranks', on each of them: a shard that one rank alone cannot
// open or read ends every rank's evaluation at once with its error, instead of leaving the
// others in the final average (or the TP peers in Forward) until the collective timeout.
// Over the DP group, then the model's TP group: two rounds that reach the whole DP x TP grid.
absl::Status Agree(Communicator* dp, Communicator* tp, const absl::Status& mine) {
  absl::Status agreed = dp == nullptr ? mine : AgreeOnStatus(*dp, mine);
  if (tp != nullptr && tp->size() > 1) agreed = AgreeOnStatus(*tp, agreed);
  return agreed;
}

}  // namespace

absl::StatusOr<EvalResult> Evaluate(TokenModel& model, Communicator* dp, DataStreamOptions data,
                                    int64_t max_batches) {
  if (max_batches < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Evaluate: max_batches ", max_batches,
                                                   " (expected >= 0; 0: the whole split)"));
  }
  const int dp_size = dp == nullptr ? 1 : dp->size();
  const int64_t batch_size = data.batch_size, seq_len = data.seq_len;
  const std::string split =
      data.shards.empty() ? std::string("no shards")
                          : absl::StrCat(data.shards.size(), " shards from ", data.shards.front());
  data.shuffle = false;
  data.watch.reset();
  data.comm = nullptr;
  data.dp_rank = dp == nullptr ? 0 : dp->rank();
  data.dp_size = dp_size;
  absl::StatusOr<std::unique_ptr<DataStream>> opened = DataStream::Open(std::move(data));
  RETURN_IF_ERROR(Agree(dp, model.tp(), WithContext(opened.status(), "Evaluate: data")));
  DataStream& stream = **opened;
  const int64_t whole = stream.samples_per_epoch() / (dp_size * batch_size);
  const int64_t batches = max_batches > 0 ? std::min(max_batches, whole) : whole;
  if (batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Evaluate: the split (", split, ") holds ", stream.samples_per_epoch(), " sequences of ",
        seq_len, " tokens, fewer than one batch of dp ", dp_size, " x ", batch_size));
  }
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    // The batch before the forward pass, whose TP collectives a peer without one would miss.
    absl::StatusOr<Batch> batch = stream.Next();
    RETURN_IF_ERROR(Agree(dp, model.tp(), batch.status()));
    absl::StatusOr<double> loss = model.InferenceLoss(batch->tokens);
    RETURN_IF_ERROR(Agree(dp, model.tp(), loss.status()));
    sum += *loss;
  }
  // Every rank's batches hold as many tokens: the mean of the ranks' means is the mean.
  ASSIGN_OR_RETURN(const double mean, AverageOverRanks(dp, sum / static_cast<double>(batches)));
  return EvalResult{
      .loss = mean, .batches = batches, .tokens = batches * dp_size * batch_size * seq_len};
}

}  // namespace usine
