#include "runtime/core/atomic_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace usine {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(
      errno == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal,
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("writing", path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::Span<const absl::string_view> pieces) {
  return WriteFileAtomically(path, [pieces](const PieceWriter& write) -> absl::Status {
    for (absl::string_view piece : pieces) {
      if (absl::Status status = write(piece); !status.ok()) return status;
    }
    return absl::OkStatus();
  });
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::FunctionRef<absl::Status(const PieceWriter&)> produce) {
  const std::string temporary = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("creating", temporary);
  absl::Status status =
      produce([fd, &temporary](absl::string_view piece) { return WriteAll(fd, piece, temporary); });
  if (status.ok() && ::fsync(fd) != 0) status = Errno("syncing", temporary);
  if (::close(fd) != 0 && status.ok()) status = Errno("closing", temporary);
  if (status.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    status = Errno("renaming to", path);
  }
  if (!status.ok()) {
    ::unlink(temporary.c_str());  // Nothing partial is left behind.
    return status;
  }
  return SyncDirectoryOf(path);
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("syncing directory", dir);
}

}  // namespace usine
