// The mean loss of a TokenModel over a split of token shards, data-parallel: what the Trainer
// reports as the validation loss every `eval_every` steps, and what `usine eval` prints.
//
//   DataStreamOptions data;
//   data.shards = val_shards;  data.vocab_size = 50257;  data.seq_len = 1024;  data.batch_size = 8;
//   ASSIGN_OR_RETURN(EvalResult r,
//                    Evaluate(*model, &grid->comm(ParallelAxis::kData), data, /*max_batches=*/0));
//   printf("loss %.4f, perplexity %.2f over %lld tokens\n", r.loss, r.perplexity(), r.tokens);
//
// The split is read in file order, not shuffled: DP rank r of n takes, of global batch k, the
// batch_size sequences after the first (k * n + r) * batch_size, so that every DP size sees
// the same sequences when the batches evaluated cover the same ones (n * max_batches equal).
//
// A collective over `dp` and, through InferenceLoss, over the model's TP group: every rank calls it
// with the same options (TP ranks of one DP group read the same batches). Not thread-safe.
#ifndef USINE_RUNTIME_TRAIN_EVALUATE_H_
#define USINE_RUNTIME_TRAIN_EVALUATE_H_

#include <cstdint>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/data/data_stream.h"
#include "runtime/nn/token_model.h"

namespace usine {

struct EvalResult {
  double loss = 0;      // The mean over every DP rank's predicted tokens; the same everywhere.
  int64_t batches = 0;  // Per DP rank.
  int64_t tokens = 0;   // Predicted tokens over all DP ranks: batches * n * batch_size * seq_len.
  double perplexity() const;  // exp(loss).
};

// The mean of the model's InferenceLoss over `max_batches` batches per DP rank, or over every
// whole global batch of the split when max_batches is 0 (or more than the split holds).
// `dp` null: this rank alone. From `data`, the shards, vocab_size, seq_len, batch_size (per
// rank), device, prefetch and fill_threads are used; shuffle, watch and comm are ignored and
// dp_rank and dp_size are set here. Leaves no activations in the model.
// Errors: a negative max_batches; a split too small for one global batch (naming its size);
// the data stream's (naming the shard); the model's. Every rank (of `dp` and of the model's TP
// group) returns the first error any of them met ("<communicator> rank R: ..." for another's),
// agreed after the stream opens and after each batch, so that a shard one rank alone cannot read
// ends the call everywhere at once.
[[nodiscard]] absl::StatusOr<EvalResult> Evaluate(TokenModel& model, Communicator* dp,
                                                  DataStreamOptions data, int64_t max_batches);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_EVALUATE_H_
