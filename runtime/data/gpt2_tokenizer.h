// GPT-2's byte-level BPE tokenizer, loaded from OpenAI's two files: vocab.bpe (the merges, in
// rank order) and encoder.json (token string -> id). The ids are exactly those of the
// gpt-3-encoder npm package, the JavaScript port of OpenAI's encoder.py, for any text.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Gpt2Tokenizer> tokenizer,
//                    Gpt2Tokenizer::Load("gpt2/vocab.bpe", "gpt2/encoder.json"));
//   std::vector<int32_t> ids = tokenizer->Encode("Hello world");  // {15496, 995}
//   ids.push_back(Gpt2Tokenizer::kEndOfText);                     // between documents
//   ASSIGN_OR_RETURN(std::string text, tokenizer->Decode(ids));   // "Hello world<|endoftext|>"
//
// Encode accepts any bytes. Text is split into pieces by GPT-2's pattern (contractions,
// letter runs, number runs, runs of other characters, whitespace; see
// internal/pretokenize.h), and each piece's bytes are BPE-encoded. Bytes that are not valid
// UTF-8 are encoded one by one like any other character, so Decode(Encode(bytes)) == bytes
// for every byte string. Encode never produces kEndOfText: the text "<|endoftext|>" is
// encoded as ordinary text; callers insert the id between documents.
//
// Unicode classes (letters, numbers, whitespace) come from the system's ICU; text with
// characters that a newer Unicode version assigned may split differently from a reference
// running on newer Unicode data. Whitespace is JavaScript's \s, as in gpt-3-encoder; Python's
// regex module (encoder.py) differs on U+0085 and U+FEFF at least.
//
// Thread-safety: a loaded tokenizer is immutable and safe for concurrent use by multiple
// threads without external synchronization.
#ifndef USINE_RUNTIME_DATA_GPT2_TOKENIZER_H_
#define USINE_RUNTIME_DATA_GPT2_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "runtime/data/internal/bpe.h"

namespace usine {

class Gpt2Tokenizer {
 public:
  // "<|endoftext|>", the document separator; the last id of the vocabulary.
  static constexpr int32_t kEndOfText = 50256;

  // Reads the merges from `vocab_bpe_path` (a "#version" line, then one "left right" pair
  // per line) and the vocabulary from `encoder_json_path` (one JSON object). Errors name
  // the file and the line or key: a file that cannot be read, JSON that does not parse, an
  // id that is not a distinct integer in [0, size), a malformed merge line, a merge whose
  // tokens are not in the vocabulary or whose parts are not bytes or earlier merges, and a
  // vocabulary without the 256 single bytes or with "<|endoftext|>" not at kEndOfText.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Load(
      absl::string_view vocab_bpe_path, absl::string_view encoder_json_path);

  // The token ids of `text`, any bytes.
  std::vector<int32_t> Encode(absl::string_view text) const;
  // Appends the token ids of `text` to *ids, reusing its capacity.
  void EncodeTo(absl::string_view text, std::vector<int32_t>* ids) const;

  // The bytes the ids stand for. An id outside [0, vocab_size()) is an error that names it
  // and its index.
  [[nodiscard]] absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  // The number of ids: 50257 for GPT-2.
  int vocab_size() const { return static_cast<int>(token_offsets_.size()) - 1; }

 private:
  Gpt2Tokenizer() = default;

  std::array<int32_t, 256> byte_ids_{};  // the token of each single byte
  data_internal::MergeTable merges_;
  // Token i is token_bytes_[token_offsets_[i], token_offsets_[i + 1]).
  std::string token_bytes_;
  std::vector<uint32_t> token_offsets_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_GPT2_TOKENIZER_H_
