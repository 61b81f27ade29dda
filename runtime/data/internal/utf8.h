// Strict UTF-8 decoding, one character at a time, for the GPT-2 tokenizer. A sequence is
// valid when it is the shortest encoding of a code point up to U+10FFFF that is not a
// surrogate (RFC 3629); anything else is reported as invalid so that the caller can treat its
// first byte on its own.
//
//   Utf8Char c = DecodeUtf8At("é!", 0);  // c.code_point == 0xE9, c.length == 2
#ifndef USINE_RUNTIME_DATA_INTERNAL_UTF8_H_
#define USINE_RUNTIME_DATA_INTERNAL_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace usine::data_internal {

struct Utf8Char {
  char32_t code_point = 0;
  int length = 0;  // bytes; 0 when the bytes at the position are not valid UTF-8
};

// The character that starts at text[pos].
// REQUIRES: pos < text.size().
Utf8Char DecodeUtf8At(absl::string_view text, size_t pos);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_UTF8_H_
