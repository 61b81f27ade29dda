#include "runtime/data/internal/utf8.h"

#include <cstdint>

namespace usine::data_internal {
namespace {

bool IsContinuation(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

Utf8Char DecodeUtf8At(absl::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return {b0, 1};
  if (b0 < 0xC2) return {};  // a continuation byte, or the lead of an overlong pair
  if (b0 < 0xE0) {
    if (left < 2 || !IsContinuation(s[1])) return {};
    return {static_cast<char32_t>((b0 & 0x1F) << 6 | (s[1] & 0x3F)), 2};
  }
  if (b0 < 0xF0) {
    // E0 needs A0..BF second (no overlongs), ED needs 80..9F (no surrogates).
    const uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
    if (left < 3 || s[1] < lo || s[1] > hi || !IsContinuation(s[2])) return {};
    return {static_cast<char32_t>((b0 & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F)), 3};
  }
  if (b0 < 0xF5) {
    // F0 needs 90..BF second (no overlongs), F4 needs 80..8F (nothing past U+10FFFF).
    const uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (left < 4 || s[1] < lo || s[1] > hi || !IsContinuation(s[2]) || !IsContinuation(s[3])) {
      return {};
    }
    return {static_cast<char32_t>((b0 & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 |
                                  (s[3] & 0x3F)),
            4};
  }
  return {};
}

}  // namespace usine::data_internal
