// Text that a model wrote, made safe to print on a terminal.
#ifndef USINE_RUNTIME_CLI_INTERNAL_PRINTABLE_TEXT_H_
#define USINE_RUNTIME_CLI_INTERNAL_PRINTABLE_TEXT_H_

#include <string>
#include <string_view>

namespace usine::cli_internal {

// `text` with every control byte (0x00-0x1f and 0x7f) but newline and tab written as the four
// characters \xNN (lower-case hex), so that what an undertrained model draws (a NUL, an escape
// sequence) shows and changes nothing on the terminal. Every other byte, UTF-8 included, is
// kept as it is.
std::string PrintableText(std::string_view text);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_PRINTABLE_TEXT_H_
