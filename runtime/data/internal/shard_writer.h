// Fills the token shards of one split on one rank: documents go in, one after another, and
// every time `shard_tokens` tokens have gathered they are written as the next shard
// (`<split>_r<rank>_<index>.bin`, atomically) and checksummed. A document that does not fit
// continues in the next shard.
//
//   ShardWriter train(out_dir, DataSplit::kTrain, rank, shard_tokens, TokenWidth::kUint16);
//   RETURN_IF_ERROR(train.Append(document));  // EOT, then the document's tokens
//   RETURN_IF_ERROR(train.Finish());          // the last, shorter shard
//   ... train.shards() ...
//
// Not thread-safe: one thread appends.
#ifndef USINE_RUNTIME_DATA_INTERNAL_SHARD_WRITER_H_
#define USINE_RUNTIME_DATA_INTERNAL_SHARD_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "runtime/data/prep.h"
#include "runtime/data/token_shard.h"

namespace usine::data_internal {

// "train_r0003_000012.bin".
std::string ShardFileName(DataSplit split, int rank, int64_t index);

class ShardWriter {
 public:
  // REQUIRES: 1 <= shard_tokens <= 2^31 - 1; out_dir exists.
  ShardWriter(std::string out_dir, DataSplit split, int rank, int64_t shard_tokens,
              TokenWidth width);

  // Adds one document: its first token starts it (counted in that shard's documents).
  // Writes the shards that fill up.
  [[nodiscard]] absl::Status Append(absl::Span<const int32_t> document);
  // Writes the tokens still buffered, if any, as the last shard.
  [[nodiscard]] absl::Status Finish();

  // The shards written so far, in order.
  const std::vector<PrepShard>& shards() const { return shards_; }

 private:
  absl::Status WriteShard();

  const std::string out_dir_;
  const DataSplit split_;
  const int rank_;
  const int64_t shard_tokens_;
  const TokenWidth width_;
  std::vector<int32_t> buffer_;
  int64_t buffered_documents_ = 0;
  std::vector<PrepShard> shards_;
};

// Removes the files of `shards` from `out_dir`, ignoring those already gone.
void RemoveShards(const std::string& out_dir, const std::vector<PrepShard>& shards);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_SHARD_WRITER_H_
