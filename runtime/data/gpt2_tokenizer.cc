#include "runtime/data/gpt2_tokenizer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "runtime/core/status_macros.h"
#include "runtime/data/internal/byte_unicode.h"
#include "runtime/data/internal/pretokenize.h"
#include <nlohmann/json.hpp>

namespace usine {
namespace {

using data_internal::VocabStringToBytes;

// Token strings as the files spell them (see internal/byte_unicode.h) -> id.
using VocabIds = absl::flat_hash_map<std::string, int32_t>;

constexpr absl::string_view kEndOfTextString = "<|endoftext|>";

absl::StatusOr<std::string> ReadFile(absl::string_view path) {
  std::FILE* file = std::fopen(std::string(path).c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  std::string content;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) content.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot read: ", std::strerror(error)));
  }
  return content;
}

// A token or line for an error message: escaped, and cut short when long.
std::string Quote(absl::string_view s) {
  constexpr size_t kMaxShown = 60;
  std::string quoted = absl::StrCat("\"", absl::Utf8SafeCHexEscape(s.substr(0, kMaxShown)), "\"");
  if (s.size() > kMaxShown) absl::StrAppend(&quoted, "...");
  return quoted;
}

// Reads encoder.json into `vocab` (token string -> id) and `tokens` (id -> bytes).
absl::Status LoadVocabulary(absl::string_view path, VocabIds* vocab,
                            std::vector<std::string>* tokens) {
  ASSIGN_OR_RETURN(std::string content, ReadFile(path));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
  if (!json.is_object() || json.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a JSON object of token -> id, got ", json.type_name()));
  }
  const auto size = static_cast<int64_t>(json.size());
  tokens->assign(size, std::string());
  std::vector<bool> seen(size, false);
  for (const auto& [key, value] : json.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() >= size) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token ", Quote(key), ": id ",
                                                     value.dump(), " is not an integer in [0, ",
                                                     size, ")"));
    }
    const auto id = value.get<int32_t>();
    if (seen[id]) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": token ", Quote(key), ": id ", id, " is given to two tokens"));
    }
    seen[id] = true;
    std::optional<std::string> bytes = VocabStringToBytes(key);
    if (!bytes.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": token ", Quote(key), " has a character that stands for no byte"));
    }
    (*tokens)[id] = *std::move(bytes);
    (*vocab)[key] = id;
  }
  auto eot = vocab->find(kEndOfTextString);
  if (eot == vocab->end() || eot->second != Gpt2Tokenizer::kEndOfText) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": token ", Quote(kEndOfTextString),
                                                   " must have the id ",
                                                   Gpt2Tokenizer::kEndOfText));
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> FindToken(const VocabIds& vocab, absl::string_view token,
                                  absl::string_view where, absl::string_view encoder_json_path) {
  auto it = vocab.find(token);
  if (it == vocab.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": token ", Quote(token), " is not in ", encoder_json_path));
  }
  return it->second;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::Load(
    absl::string_view vocab_bpe_path, absl::string_view encoder_json_path) {
  VocabIds vocab;
  std::vector<std::string> tokens;
  RETURN_IF_ERROR(LoadVocabulary(encoder_json_path, &vocab, &tokens));
  std::unique_ptr<Gpt2Tokenizer> tokenizer(new Gpt2Tokenizer());

  // A merge may only join tokens that exist before it: single bytes, or earlier merges'
  // results. That is how BPE learns its merges, and what EncodePiece relies on.
  std::vector<bool> formed(tokens.size(), false);
  std::vector<bool> has_byte(256, false);
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (tokens[id].size() != 1) continue;
    const auto byte = static_cast<uint8_t>(tokens[id][0]);
    tokenizer->byte_ids_[byte] = static_cast<int32_t>(id);
    has_byte[byte] = true;
    formed[id] = true;
  }
  for (int b = 0; b < 256; ++b) {
    if (!has_byte[b]) {
      return absl::InvalidArgumentError(
          absl::StrCat(encoder_json_path, ": no token for the byte 0x", absl::Hex(b)));
    }
  }

  ASSIGN_OR_RETURN(std::string merges_text, ReadFile(vocab_bpe_path));
  std::vector<absl::string_view> lines = absl::StrSplit(merges_text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    if (i == 0 && absl::StartsWith(line, "#version")) continue;
    const std::string where = absl::StrCat(vocab_bpe_path, ":", i + 1);
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected two tokens separated by one space, got ", Quote(line)));
    }
    ASSIGN_OR_RETURN(int32_t left, FindToken(vocab, parts[0], where, encoder_json_path));
    ASSIGN_OR_RETURN(int32_t right, FindToken(vocab, parts[1], where, encoder_json_path));
    ASSIGN_OR_RETURN(int32_t merged,
                     FindToken(vocab, absl::StrCat(parts[0], parts[1]), where, encoder_json_path));
    for (const auto& [token, id] : {std::pair(parts[0], left), std::pair(parts[1], right)}) {
      if (!formed[id]) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": token ", Quote(token), " is neither a byte nor made by an earlier merge"));
      }
    }
    if (!tokenizer->merges_.Add(left, right, merged)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the pair ", Quote(line), " is merged a second time"));
    }
    formed[merged] = true;
  }

  tokenizer->token_offsets_.reserve(tokens.size() + 1);
  tokenizer->token_offsets_.push_back(0);
  for (const std::string& token : tokens) {
    tokenizer->token_bytes_ += token;
    tokenizer->token_offsets_.push_back(static_cast<uint32_t>(tokenizer->token_bytes_.size()));
  }
  return tokenizer;
}

std::vector<int32_t> Gpt2Tokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids;
  EncodeTo(text, &ids);
  return ids;
}

void Gpt2Tokenizer::EncodeTo(absl::string_view text, std::vector<int32_t>* ids) const {
  // Words repeat, so a call on a long text remembers where in *ids a piece was first encoded
  // and copies those ids when it comes again. Per call, so that Encode stays const and
  // lock-free; capped, so that a huge text of distinct pieces does not grow it without bound;
  // and only for long texts, where repeats pay for the hashing (a paragraph at a time, it
  // halves the speed).
  constexpr size_t kMinTextToRemember = 16 << 10;
  constexpr size_t kMaxRemembered = 1 << 16;
  const size_t max_remembered = text.size() >= kMinTextToRemember ? kMaxRemembered : 0;
  struct IdRange {
    size_t offset;
    size_t count;
  };
  absl::flat_hash_map<absl::string_view, IdRange> seen;
  data_internal::Pretokenizer pieces(text);
  data_internal::BpeScratch scratch;
  absl::string_view piece;
  while (pieces.Next(&piece)) {
    if (piece.size() == 1) {
      ids->push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
      continue;
    }
    if (max_remembered > 0) {
      if (auto it = seen.find(piece); it != seen.end()) {
        const auto first = ids->begin() + static_cast<ptrdiff_t>(it->second.offset);
        ids->insert(ids->end(), first, first + static_cast<ptrdiff_t>(it->second.count));
        continue;
      }
    }
    const size_t offset = ids->size();
    data_internal::EncodePiece(piece, byte_ids_, merges_, &scratch, ids);
    if (seen.size() < max_remembered) seen.emplace(piece, IdRange{offset, ids->size() - offset});
  }
}

absl::StatusOr<std::string> Gpt2Tokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size()) {
      return absl::OutOfRangeError(
          absl::StrCat("Decode: id ", id, " at index ", i, " is not in [0, ", vocab_size(), ")"));
    }
    text.append(token_bytes_, token_offsets_[id], token_offsets_[id + 1] - token_offsets_[id]);
  }
  return text;
}

}  // namespace usine
