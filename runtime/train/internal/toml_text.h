// TOML literals for the values a RunConfig holds, written so that a TOML parser reads back
// exactly the same value.
//
//   TomlFloat(3e-4) == "0.0003";  TomlFloat(1) == "1.0";  TomlString("a\"b") == "\"a\\\"b\""
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_TOML_TEXT_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_TOML_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace usine::run_config_internal {

// The shortest decimal that reads back as `value`, always a TOML float ("1.0", not "1");
// "inf", "-inf" and "nan" for the non-finite values.
std::string TomlFloat(double value);

// A TOML basic string: in double quotes, with '"', '\' and the control characters escaped.
// REQUIRES: `text` is UTF-8 (what a TOML parser gave).
std::string TomlString(absl::string_view text);

}  // namespace usine::run_config_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_TOML_TEXT_H_
