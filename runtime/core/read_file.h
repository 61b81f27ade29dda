// A whole file's bytes, for the small files a command reads at once (a model's config.json, a
// tokenizer's vocabulary).
//
//   ASSIGN_OR_RETURN(const std::string text, ReadFile("hf/gpt2/config.json"));
#ifndef USINE_RUNTIME_CORE_READ_FILE_H_
#define USINE_RUNTIME_CORE_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace usine {

// NotFound, naming `path`, when it cannot be opened; DataLoss when a read fails.
[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_READ_FILE_H_
