#include "runtime/cli/internal/subprocess.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace usine::cli_internal {
namespace {

// The last line of `text` that is not blank, stripped; empty if there is none.
std::string LastLine(const std::string& text) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) last = std::string(line);
  }
  return last;
}

}  // namespace

std::string PeerScript(const std::string& path) {
  std::error_code error;
  if (path.empty() || path.front() == '/' || std::filesystem::exists(path, error)) return path;
  std::vector<std::filesystem::path> roots;
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) roots.push_back(executable.parent_path().parent_path() / "share" / "usine");
  roots.emplace_back(USINE_SOURCE_DIR);
  for (const std::filesystem::path& root : roots) {
    if (std::filesystem::exists(root / path, error)) return (root / path).string();
  }
  return path;
}

std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

absl::StatusOr<std::string> RunCommand(const std::string& command) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string stderr_path = absl::StrCat(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp",
                                         "/usine-subprocess-XXXXXX");
  const int stderr_fd = ::mkstemp(stderr_path.data());
  if (stderr_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot make ", stderr_path, " for the standard error of `", command, "`"));
  }
  ::close(stderr_fd);
  // The blank line ends a command whose last line ends in a backslash.
  const std::string shell = absl::StrCat("{ ", command, "\n\n} 2>", ShellQuote(stderr_path));
  std::FILE* pipe = ::popen(shell.c_str(), "r");
  std::string output;
  int status = -1;
  if (pipe != nullptr) {
    char chunk[4096];
    while (std::fgets(chunk, sizeof(chunk), pipe) != nullptr) output += chunk;
    status = ::pclose(pipe);
  }
  std::ostringstream errors;
  errors << std::ifstream(stderr_path).rdbuf();
  ::unlink(stderr_path.c_str());
  const std::string error_text = errors.str();
  std::fwrite(error_text.data(), 1, error_text.size(), stderr);
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run `", command, "`"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string reason = LastLine(error_text);
    return absl::UnavailableError(
        absl::StrCat("`", command, "` failed (",
                     WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status)) : "killed", ")",
                     reason.empty() ? "" : absl::StrCat(": ", reason)));
  }
  return output;
}

}  // namespace usine::cli_internal
