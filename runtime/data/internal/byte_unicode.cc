#include "runtime/data/internal/byte_unicode.h"

#include <array>
#include <cstdint>

#include "runtime/data/internal/utf8.h"

namespace usine::data_internal {
namespace {

// Every byte's code point lies below U+0144 (256 bytes, 188 of them printable).
constexpr char32_t kCodePointLimit = 0x144;

constexpr bool IsPrintableLatin1(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// code point -> byte, -1 for code points that stand for no byte.
constexpr std::array<int16_t, kCodePointLimit> MakeCodePointToByte() {
  std::array<int16_t, kCodePointLimit> table{};
  for (int16_t& entry : table) entry = -1;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const int code_point = IsPrintableLatin1(b) ? b : 256 + n++;
    table[code_point] = static_cast<int16_t>(b);
  }
  return table;
}

constexpr std::array<int16_t, kCodePointLimit> kCodePointToByte = MakeCodePointToByte();

}  // namespace

std::optional<std::string> VocabStringToBytes(absl::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const Utf8Char c = DecodeUtf8At(token, pos);
    if (c.length == 0 || c.code_point >= kCodePointLimit || kCodePointToByte[c.code_point] < 0) {
      return std::nullopt;
    }
    bytes.push_back(static_cast<char>(kCodePointToByte[c.code_point]));
    pos += c.length;
  }
  return bytes;
}

}  // namespace usine::data_internal
