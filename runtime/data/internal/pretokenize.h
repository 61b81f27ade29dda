// GPT-2's pre-tokenization: the split of text into the pieces that BPE then encodes one by
// one. It is the regular expression of OpenAI's encoder.py, as gpt-3-encoder runs it in
// JavaScript with the `u` flag:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// implemented as a scanner over code points. At each position the first alternative that
// matches wins: a lowercase contraction; an optional ' ' (U+0020 only) and a run of letters,
// of numbers, or of other characters; then whitespace. A whitespace run takes all of itself
// at the end of the text, and otherwise leaves its last character for the next piece (so
// "a  b" is "a", " ", " b"), unless it is a single character.
//
//   Pretokenizer pieces("Hello world");
//   absl::string_view piece;
//   while (pieces.Next(&piece)) { ... "Hello", then " world" ... }
//
// Character classes (letter \p{L}, number \p{N}, ECMAScript whitespace \s, other) come from
// ICU's Unicode data. Bytes that are not part of valid UTF-8 are characters of class other,
// one byte each, so every byte string splits into pieces that concatenate back to it.
#ifndef USINE_RUNTIME_DATA_INTERNAL_PRETOKENIZE_H_
#define USINE_RUNTIME_DATA_INTERNAL_PRETOKENIZE_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace usine::data_internal {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct ClassifiedChar {
  int length;  // bytes
  CharClass cls;
};

// The character that starts at text[pos] and its class.
// REQUIRES: pos < text.size().
ClassifiedChar ClassifyAt(absl::string_view text, size_t pos);

// Yields the pieces of a text in order. Holds a view: `text` must outlive it.
class Pretokenizer {
 public:
  explicit Pretokenizer(absl::string_view text) : text_(text) {}

  // Sets *piece to the next piece (never empty) and returns true, or returns false at the end.
  bool Next(absl::string_view* piece);

 private:
  size_t ContractionEnd(size_t pos) const;  // 0 when no contraction starts at pos
  size_t RunEnd(size_t pos, CharClass cls) const;
  size_t WhitespaceEnd(size_t pos) const;

  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_PRETOKENIZE_H_
