#include "runtime/train/internal/toml_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace usine::run_config_internal {

std::string TomlFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  // std::to_chars without a format gives the shortest text that reads back exactly.
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  // "1" and "1e+20" would be TOML integers or fine as they are; only the former needs ".0".
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string TomlString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04X", byte);
      out += escape;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace usine::run_config_internal
