// Running a peer program from a benchmark: a shell command whose standard output is the
// result (its standard error is passed on to the caller's).
#ifndef USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_
#define USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "nlohmann/json.hpp"

namespace usine::cli_internal {

// `s` as one word for /bin/sh, whatever it holds.
std::string ShellQuote(absl::string_view s);

// A peer script's path, for a `path` relative to the repository's root as the flags' defaults
// are ("scripts/bench/torch_gpt_train.py"): `path` itself if it is absolute or names a file from
// the working directory; else the first that exists of the same path under the installed data
// directory's usine/, where `cmake --install` puts the scripts (found from the executable's
// directory: `../share/usine/` with the default install directories), and under the source
// tree `usine` was built from; else `path`, whose error the peer's line then shows.
std::string PeerScript(const std::string& path);

// Runs `command` with /bin/sh and returns its standard output; an error naming the command, its
// exit status and the last line of its standard error (a script's reason, a traceback's last
// line) if it could not start or exited non-zero. Its standard error is passed on to the
// caller's as it comes.
[[nodiscard]] absl::StatusOr<std::string> RunCommand(const std::string& command);

// RunCommand, then the JSON object on the last line of its output that is not blank, the way
// the peer scripts report their figures; an error naming the command and its output if that
// line is not a JSON object.
[[nodiscard]] absl::StatusOr<nlohmann::json> RunPeerJson(const std::string& command);

// `flag` (a --python given), or else the first of python3 (the PATH's) and Debian's
// /usr/bin/python3 that imports `module`, the peer's need (a pyenv python3 may come first without
// it); python3 when neither does, whose error the peer's line then shows.
std::string PeerPython(const std::string& flag, absl::string_view module);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_SUBPROCESS_H_
