#include "runtime/train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {
namespace {

absl::Status ErrnoStatus(int error, absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(path, ": cannot ", what, ": ", std::strerror(error)));
}

// Writes all of `bytes`, resuming after interruptions and short writes.
absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "append", path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Whether the file ends in a byte other than a newline (a line cut short).
absl::StatusOr<bool> EndsInPartialLine(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat", path);
  if (st.st_size == 0) return false;
  char last = '\n';
  if (::pread(fd, &last, 1, st.st_size - 1) != 1) return ErrnoStatus(errno, "read", path);
  return last != '\n';
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsLog>> MetricsLog::Open(const std::string& run_dir) {
  std::string path = absl::StrCat(run_dir, "/", kFileName);
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  auto log = std::unique_ptr<MetricsLog>(new MetricsLog(std::move(path), fd));
  ASSIGN_OR_RETURN(bool partial, EndsInPartialLine(fd, log->path_));
  if (partial) RETURN_IF_ERROR(WriteAll(fd, "\n", log->path_));
  return log;
}

MetricsLog::~MetricsLog() { ::close(fd_); }

absl::Status MetricsLog::Append(const StepMetrics& metrics) {
  return AppendLine(StepMetricsJson(metrics));
}

absl::Status MetricsLog::Append(const EvalMetrics& metrics) {
  return AppendLine(EvalMetricsJson(metrics));
}

absl::Status MetricsLog::AppendLine(std::string line) {
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  return WriteAll(fd_, line, path_);
}

}  // namespace usine
