#include "runtime/data/internal/shard_writer.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_format.h"

#include "runtime/core/crc32c.h"
#include "runtime/core/status_macros.h"

namespace usine::data_internal {

std::string ShardFileName(DataSplit split, int rank, int64_t index) {
  return absl::StrFormat("%s_r%04d_%06d.bin", SplitName(split), rank, index);
}

ShardWriter::ShardWriter(std::string out_dir, DataSplit split, int rank, int64_t shard_tokens,
                         TokenWidth width)
    : out_dir_(std::move(out_dir)),
      split_(split),
      rank_(rank),
      shard_tokens_(shard_tokens),
      width_(width) {}

absl::Status ShardWriter::Append(absl::Span<const int32_t> document) {
  if (document.empty()) return absl::OkStatus();
  ++buffered_documents_;
  while (!document.empty()) {
    const size_t room = static_cast<size_t>(shard_tokens_) - buffer_.size();
    const size_t n = std::min(room, document.size());
    buffer_.insert(buffer_.end(), document.begin(), document.begin() + n);
    document.remove_prefix(n);
    if (static_cast<int64_t>(buffer_.size()) == shard_tokens_) RETURN_IF_ERROR(WriteShard());
  }
  return absl::OkStatus();
}

absl::Status ShardWriter::Finish() { return buffer_.empty() ? absl::OkStatus() : WriteShard(); }

absl::Status ShardWriter::WriteShard() {
  PrepShard shard;
  shard.file = ShardFileName(split_, rank_, static_cast<int64_t>(shards_.size()));
  shard.split = split_;
  shard.rank = rank_;
  shard.tokens = static_cast<int64_t>(buffer_.size());
  shard.documents = buffered_documents_;
  const std::string path = absl::StrCat(out_dir_, "/", shard.file);
  RETURN_IF_ERROR(WriteTokenShard(path, buffer_, width_));
  shards_.push_back(shard);  // Written: removed again if the run fails later.
  // The checksum of what is on disk, read back (from the page cache, as a rule).
  ASSIGN_OR_RETURN(shards_.back().crc32c, Crc32cOfFile(path));
  buffer_.clear();
  buffered_documents_ = 0;
  return absl::OkStatus();
}

void RemoveShards(const std::string& out_dir, const std::vector<PrepShard>& shards) {
  for (const PrepShard& shard : shards) {
    std::remove(absl::StrCat(out_dir, "/", shard.file).c_str());
  }
}

}  // namespace usine::data_internal
