#include "runtime/cli/internal/subprocess.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

#include "runtime/core/status_macros.h"

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
  if (!error) roots.push_back((executable.parent_path() / USINE_DATA_FROM_BIN).lexically_normal());
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
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("cannot make a pipe for `", command, "`"));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(absl::StrCat("cannot make a pipe for `", command, "`"));
  }
  // The child's standard output and error are the pipes' write ends (dup2 clears O_CLOEXEC on
  // them); every other pipe end closes on exec.
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::string sh = "sh", dash_c = "-c", text = command;
  char* argv[] = {sh.data(), dash_c.data(), text.data(), nullptr};
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (spawned != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return absl::InternalError(absl::StrCat("cannot run `", command, "`"));
  }
  // Both pipes are read as the child writes them, so that neither fills and blocks it; its
  // standard error is passed on at once (a long build shows its progress), and its last 64 KB
  // are kept for the reason of a failure.
  constexpr size_t kKeptErrorBytes = 64 << 10;
  std::string output, error_tail;
  pollfd fds[2] = {{.fd = out[0], .events = POLLIN, .revents = 0},
                   {.fd = err[0], .events = POLLIN, .revents = 0}};
  int open_pipes = 2;
  while (open_pipes > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (pollfd& f : fds) {
      if (f.fd < 0 || f.revents == 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(f.fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(f.fd);
        f.fd = -1;
        --open_pipes;
        continue;
      }
      if (&f == &fds[0]) {
        output.append(chunk, static_cast<size_t>(n));
        continue;
      }
      std::fwrite(chunk, 1, static_cast<size_t>(n), stderr);
      std::fflush(stderr);
      error_tail.append(chunk, static_cast<size_t>(n));
      if (error_tail.size() > 2 * kKeptErrorBytes) {
        error_tail.erase(0, error_tail.size() - kKeptErrorBytes);
      }
    }
  }
  for (const pollfd& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("cannot wait for `", command, "`"));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string reason = LastLine(error_tail);
    return absl::UnavailableError(
        absl::StrCat("`", command, "` failed (",
                     WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status)) : "killed", ")",
                     reason.empty() ? "" : absl::StrCat(": ", reason)));
  }
  return output;
}

absl::StatusOr<nlohmann::json> RunPeerJson(const std::string& command) {
  ASSIGN_OR_RETURN(const std::string output, RunCommand(command));
  nlohmann::json figures =
      nlohmann::json::parse(LastLine(output), nullptr, /*allow_exceptions=*/false);
  if (!figures.is_object()) {
    return absl::InternalError(absl::StrCat("unexpected output of `", command, "`: ", output));
  }
  return figures;
}

std::string PeerPython(const std::string& flag, absl::string_view module) {
  if (!flag.empty()) return flag;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (RunCommand(absl::StrCat(candidate, " -c 'import ", module, "' 2>/dev/null")).ok()) {
      return candidate;
    }
  }
  return "python3";
}

}  // namespace usine::cli_internal
