#include "runtime/cli/internal/printable_text.h"

#include "absl/strings/str_format.h"

namespace usine::cli_internal {

std::string PrintableText(std::string_view text) {
  std::string shown;
  shown.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7f) {
      absl::StrAppendFormat(&shown, "\\x%02x", byte);
    } else {
      shown.push_back(c);
    }
  }
  return shown;
}

}  // namespace usine::cli_internal
