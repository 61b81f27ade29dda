// Token shards: the files that `usine prep` writes and DataStream reads. The layout is
// llm.c's, so the same files feed both (docs/formats.md):
//   bytes 0..1023   header: 256 little-endian int32; [0] magic 20240520, [1] version
//                   (1: uint16 tokens, 2: uint32 tokens for vocabularies over 65,535),
//                   [2] token count; the rest zero
//   bytes 1024..    the tokens, little-endian, documents separated by the EOT token
//
//   RETURN_IF_ERROR(WriteTokenShard("train_000001.bin", tokens, TokenWidth::kUint16));
//   ASSIGN_OR_RETURN(TokenShard shard, TokenShard::Open("train_000001.bin", /*vocab_size=*/50257));
//   shard.CopyTokens(begin, n, out);  // int32 ids
//
// A shard is written under a temporary name, flushed to disk and renamed, so a reader (or a
// directory watcher) sees either no file or a complete one. Open() memory-maps the file and
// checks it completely before returning: a wrong magic or version, a size that disagrees
// with the header, or a token id >= vocab_size is an error naming the file and the byte
// offset. A TokenShard is immutable and safe to read from several threads.
#ifndef USINE_RUNTIME_DATA_TOKEN_SHARD_H_
#define USINE_RUNTIME_DATA_TOKEN_SHARD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace usine {

inline constexpr int32_t kTokenShardMagic = 20240520;
inline constexpr int64_t kTokenShardHeaderBytes = 1024;

enum class TokenWidth { kUint16 = 1, kUint32 = 2 };  // The value is the header's version.

// The narrowest width that holds every id below vocab_size.
TokenWidth TokenWidthFor(int64_t vocab_size);

// Writes `tokens` as a shard at `path` (atomically: a temporary file in the same directory,
// fsync, rename, fsync of the directory). Every token must fit `width`.
[[nodiscard]] absl::Status WriteTokenShard(const std::string& path,
                                           absl::Span<const int32_t> tokens, TokenWidth width);

class TokenShard {
 public:
  // Maps and validates the shard at `path`; every token must be < vocab_size.
  [[nodiscard]] static absl::StatusOr<TokenShard> Open(const std::string& path, int64_t vocab_size);
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  const std::string& path() const { return path_; }
  int64_t size() const { return count_; }  // Tokens.
  TokenWidth width() const { return width_; }
  int32_t token(int64_t i) const;  // REQUIRES: 0 <= i < size().
  // out[k] = token(begin + k) for k < n. REQUIRES: 0 <= begin, begin + n <= size().
  void CopyTokens(int64_t begin, int64_t n, int32_t* out) const;
  // Asks the CPU to start loading tokens [begin, begin + n) into its caches (a hint; for
  // readers that know their next reads, such as DataStream's random samples).
  void Prefetch(int64_t begin, int64_t n) const;
  // CopyTokens into 16-bit ids (a memcpy for a uint16 shard).
  // REQUIRES: as above, and every token < 65536 (Open's vocab_size <= 65536).
  void CopyTokens(int64_t begin, int64_t n, uint16_t* out) const;

 private:
  TokenShard() = default;
  std::string path_;
  const unsigned char* map_ = nullptr;
  size_t map_bytes_ = 0;
  int64_t count_ = 0;
  TokenWidth width_ = TokenWidth::kUint16;
};

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_TOKEN_SHARD_H_
