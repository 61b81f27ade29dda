#include "runtime/data/token_shard.h"

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "runtime/core/atomic_file.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token shards are little-endian");

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(
      errno == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal,
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

template <typename T>
std::vector<T> Narrow(absl::Span<const int32_t> tokens) {
  return std::vector<T>(tokens.begin(), tokens.end());
}

}  // namespace

TokenWidth TokenWidthFor(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenWidth::kUint16 : TokenWidth::kUint32;
}

absl::Status WriteTokenShard(const std::string& path, absl::Span<const int32_t> tokens,
                             TokenWidth width) {
  const int64_t limit = width == TokenWidth::kUint16 ? 65535 : INT32_MAX;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] > limit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token shard ", path, ": token ", i, " = ", tokens[i], " does not fit the shard's ",
          width == TokenWidth::kUint16 ? 16 : 32, "-bit ids"));
    }
  }
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token shard ", path, ": ", tokens.size(), " tokens exceed 2^31 - 1"));
  }
  int32_t header[kTokenShardHeaderBytes / 4] = {};
  header[0] = kTokenShardMagic;
  header[1] = static_cast<int32_t>(width);
  header[2] = static_cast<int32_t>(tokens.size());

  const absl::string_view header_bytes(reinterpret_cast<const char*>(header), sizeof(header));
  if (width == TokenWidth::kUint16) {
    const std::vector<uint16_t> narrow = Narrow<uint16_t>(tokens);
    return WriteFileAtomically(
        path, {header_bytes,
               absl::string_view(reinterpret_cast<const char*>(narrow.data()), narrow.size() * 2)});
  }
  return WriteFileAtomically(
      path, {header_bytes,
             absl::string_view(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 4)});
}

absl::StatusOr<TokenShard> TokenShard::Open(const std::string& path, int64_t vocab_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("opening token shard", path);
  struct stat st = {};
  if (::fstat(fd, &st) != 0) {
    const absl::Status s = Errno("reading the size of token shard", path);
    ::close(fd);
    return s;
  }
  const int64_t file_bytes = st.st_size;
  if (file_bytes < kTokenShardHeaderBytes) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("token shard ", path, ": truncated header (",
                                            file_bytes, " bytes, expected at least ",
                                            kTokenShardHeaderBytes, ")"));
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Errno("mapping token shard", path);
  TokenShard shard;
  shard.path_ = path;
  shard.map_ = static_cast<const unsigned char*>(map);
  shard.map_bytes_ = static_cast<size_t>(file_bytes);

  int32_t header[3];
  std::memcpy(header, shard.map_, sizeof(header));
  if (header[0] != kTokenShardMagic) {
    return absl::DataLossError(absl::StrCat("token shard ", path, ": magic ", header[0],
                                            " at offset 0, expected ", kTokenShardMagic));
  }
  if (header[1] != 1 && header[1] != 2) {
    return absl::DataLossError(absl::StrCat("token shard ", path, ": version ", header[1],
                                            " at offset 4, expected 1 (uint16) or 2 (uint32)"));
  }
  if (header[2] < 0) {
    return absl::DataLossError(
        absl::StrCat("token shard ", path, ": negative token count ", header[2], " at offset 8"));
  }
  shard.width_ = static_cast<TokenWidth>(header[1]);
  shard.count_ = header[2];
  const int64_t bytes_per_token = shard.width_ == TokenWidth::kUint16 ? 2 : 4;
  const int64_t expected = kTokenShardHeaderBytes + shard.count_ * bytes_per_token;
  if (file_bytes != expected) {
    return absl::DataLossError(absl::StrCat("token shard ", path, ": the header at offset 8 says ",
                                            shard.count_, " tokens (", expected,
                                            " bytes) but the file has ", file_bytes, " bytes",
                                            file_bytes < expected ? " (truncated)" : ""));
  }
  for (int64_t i = 0; i < shard.count_; ++i) {
    // Compared unsigned: a uint32 id of 2^31 or more would be a negative int32.
    const uint32_t id = static_cast<uint32_t>(shard.token(i));
    if (id >= static_cast<uint64_t>(vocab_size)) {
      return absl::DataLossError(absl::StrCat("token shard ", path, ": token id ", id,
                                              " at offset ",
                                              kTokenShardHeaderBytes + i * bytes_per_token,
                                              " is not below the vocabulary size ", vocab_size));
    }
  }
  return shard;
}

TokenShard::TokenShard(TokenShard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      count_(other.count_),
      width_(other.width_) {}

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  std::swap(path_, other.path_);  // `other` unmaps what this held.
  std::swap(map_, other.map_);
  std::swap(map_bytes_, other.map_bytes_);
  std::swap(count_, other.count_);
  std::swap(width_, other.width_);
  return *this;
}

TokenShard::~TokenShard() {
  if (map_ != nullptr) ::munmap(const_cast<unsigned char*>(map_), map_bytes_);
}

int32_t TokenShard::token(int64_t i) const {
  const unsigned char* p = map_ + kTokenShardHeaderBytes;
  if (width_ == TokenWidth::kUint16) {
    uint16_t v;
    std::memcpy(&v, p + i * 2, 2);
    return v;
  }
  int32_t v;
  std::memcpy(&v, p + i * 4, 4);
  return v;
}

namespace {

// out[k] = the k-th of n little-endian `Stored` values at `p`, as `Out`.
template <typename Stored, typename Out>
void CopyAs(const unsigned char* p, int64_t n, Out* out) {
  if constexpr (sizeof(Stored) == sizeof(Out)) {
    std::memcpy(out, p, static_cast<size_t>(n) * sizeof(Out));
  } else {
    for (int64_t k = 0; k < n; ++k) {
      Stored v;
      std::memcpy(&v, p + k * sizeof(Stored), sizeof(Stored));
      out[k] = static_cast<Out>(v);
    }
  }
}

}  // namespace

void TokenShard::Prefetch(int64_t begin, int64_t n) const {
  const int64_t width = width_ == TokenWidth::kUint16 ? 2 : 4;
  const unsigned char* first = map_ + kTokenShardHeaderBytes + begin * width;
  for (int64_t offset = 0; offset < n * width; offset += 64) __builtin_prefetch(first + offset);
}

void TokenShard::CopyTokens(int64_t begin, int64_t n, int32_t* out) const {
  const unsigned char* p = map_ + kTokenShardHeaderBytes;
  if (width_ == TokenWidth::kUint32) return CopyAs<uint32_t>(p + begin * 4, n, out);
  CopyAs<uint16_t>(p + begin * 2, n, out);
}

void TokenShard::CopyTokens(int64_t begin, int64_t n, uint16_t* out) const {
  const unsigned char* p = map_ + kTokenShardHeaderBytes;
  if (width_ == TokenWidth::kUint16) return CopyAs<uint16_t>(p + begin * 2, n, out);
  CopyAs<uint32_t>(p + begin * 4, n, out);
}

}  // namespace usine
