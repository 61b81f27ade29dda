#include "runtime/cli/internal/subprocess.h"

#include <cstdio>

#include <sys/wait.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace usine::cli_internal {

std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

absl::StatusOr<std::string> RunCommand(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run `", command, "`"));
  std::string output;
  char chunk[4096];
  while (std::fgets(chunk, sizeof(chunk), pipe) != nullptr) output += chunk;
  const int status = ::pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "`", command, "` failed (",
        WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status)) : "killed", ")"));
  }
  return output;
}

}  // namespace usine::cli_internal
