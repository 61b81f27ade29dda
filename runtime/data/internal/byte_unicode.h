// GPT-2's vocabulary files (vocab.bpe, encoder.json) spell every token in printable
// characters: byte b is written as code point b when b is printable Latin-1 ('!'..'~',
// '¡'..'¬', '®'..'ÿ'), and as U+0100 + n otherwise, n counting those other bytes in order
// (bytes_to_unicode() in OpenAI's encoder.py). So ' ' is written 'Ġ' (U+0120) and '\n' 'Ċ'.
//
//   VocabStringToBytes("ĠhelloĊ")  // std::string(" hello\n")
#ifndef USINE_RUNTIME_DATA_INTERNAL_BYTE_UNICODE_H_
#define USINE_RUNTIME_DATA_INTERNAL_BYTE_UNICODE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace usine::data_internal {

// The bytes that a vocabulary token stands for; nullopt when `token` is not valid UTF-8 or
// holds a character that stands for no byte.
std::optional<std::string> VocabStringToBytes(absl::string_view token);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_BYTE_UNICODE_H_
