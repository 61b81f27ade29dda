#include "runtime/data/directory_watcher.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include <poll.h>
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace usine {
namespace {

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// File systems whose changes made on another host inotify does not report.
bool IsNetworkFileSystem(const std::string& directory) {
  struct statfs info;
  if (::statfs(directory.c_str(), &info) != 0) return false;
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0x6969:      // NFS
    case 0xFF534D42:  // CIFS
    case 0xFE534D42:  // SMB2
    case 0x0BD00BD0:  // Lustre
    case 0x47504653:  // GPFS
    case 0x65735546:  // FUSE
      return true;
    default:
      return false;
  }
}

}  // namespace

bool IsLandedShardName(absl::string_view name) {
  return name.size() > 4 && name[0] != '.' && absl::EndsWith(name, ".bin");
}

absl::StatusOr<std::unique_ptr<DirectoryWatcher>> DirectoryWatcher::Open(std::string directory,
                                                                         WatchMethod method) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error)) {
    return absl::NotFoundError(absl::StrCat("watch directory ", directory, " does not exist"));
  }
  int fd = -1;
  if (method == WatchMethod::kInotify ||
      (method == WatchMethod::kAuto && !IsNetworkFileSystem(directory))) {
    fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 &&
        ::inotify_add_watch(fd, directory.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE) < 0) {
      ::close(fd);
      fd = -1;
    }
    if (fd < 0 && method == WatchMethod::kInotify) return Errno("inotify on", directory);
  }
  return std::unique_ptr<DirectoryWatcher>(new DirectoryWatcher(std::move(directory), fd));
}

DirectoryWatcher::~DirectoryWatcher() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

absl::StatusOr<std::vector<std::string>> DirectoryWatcher::List() const {
  std::vector<std::string> names;
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory_, error), end; !error && it != end;
       it.increment(error)) {
    std::string name = it->path().filename().string();
    if (IsLandedShardName(name) && it->is_regular_file(error)) names.push_back(std::move(name));
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("listing watch directory ", directory_, ": ", error.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<bool> DirectoryWatcher::Wait(absl::Duration timeout) {
  if (inotify_fd_ < 0) {
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(timeout));
    return false;
  }
  pollfd ready{inotify_fd_, POLLIN, 0};
  const int n = ::poll(&ready, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (n < 0 && errno != EINTR) return Errno("waiting on inotify for", directory_);
  if (n <= 0) return false;
  // Drain the events: List() says what they mean.
  alignas(inotify_event) char buffer[4096];
  while (::read(inotify_fd_, buffer, sizeof(buffer)) > 0) {
  }
  return true;
}

}  // namespace usine
