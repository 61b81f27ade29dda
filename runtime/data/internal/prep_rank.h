// One rank's part of `usine prep`: reads its files in order, tokenises batches of
// documents on a pool of threads, and writes the results in input order to its training
// and validation shards (runtime/data/prep.h has the rules).
//
// The calling thread reads: a text file whole, a JSONL file line by line (unparsed). Items
// are batched (about kBatchBytes of text) and each batch is parsed and tokenised on a pool
// thread; the calling thread takes the batches back in submission order, at most
// 2 * threads + 1 in flight, so memory stays bounded and the output is the same for any
// number of threads. Errors travel in the batches, so the first error in input order is
// the one reported, and a skipped line is recorded where it was.
#ifndef USINE_RUNTIME_DATA_INTERNAL_PREP_RANK_H_
#define USINE_RUNTIME_DATA_INTERNAL_PREP_RANK_H_

#include <vector>

#include "absl/status/statusor.h"

#include "runtime/data/gpt2_tokenizer.h"
#include "runtime/data/internal/prep_sources.h"
#include "runtime/data/prep.h"

namespace usine::data_internal {

struct RankOutput {
  std::vector<PrepShard> shards;  // Training, then validation, each in index order.
  std::vector<PrepSkipped> skipped;
};

// Prepares sources[i] for i in `mine` (ascending) as rank `rank`. On an error the shards
// it wrote are removed. REQUIRES: options are valid (Prep checks them); out_dir exists.
[[nodiscard]] absl::StatusOr<RankOutput> PrepRank(const PrepOptions& options,
                                                  const Gpt2Tokenizer& tokenizer,
                                                  const std::vector<PrepSource>& sources,
                                                  const std::vector<int>& mine, int rank,
                                                  const PrepProgressFn& progress);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_PREP_RANK_H_
