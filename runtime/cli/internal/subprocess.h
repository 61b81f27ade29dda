// Running a peer program from a benchmark: a shell command whose standard output is the
// result (its standard error passes through to the terminal).
#ifndef USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_
#define USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace usine::cli_internal {

// `s` as one word for /bin/sh, whatever it holds.
std::string ShellQuote(absl::string_view s);

// Runs `command` with /bin/sh and returns its standard output; an error naming the command and
// its exit status if it could not start or exited non-zero.
[[nodiscard]] absl::StatusOr<std::string> RunCommand(const std::string& command);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_
