#include "checkpoint/checkpoint_directory.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

constexpr char kPrefix[] = "step-";
constexpr char kSuffix[] = ".h5";

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(
      errno == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal,
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status Fsync(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("opening", path.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("syncing", path.string());
}

// The step of a committed checkpoint's file name, or -1.
int64_t StepOf(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix) || !absl::ConsumeSuffix(&name, kSuffix) ||
      name.size() < 8 || !std::all_of(name.begin(), name.end(), ::isdigit)) {
    return -1;
  }
  int64_t step = 0;
  return absl::SimpleAtoi(name, &step) ? step : -1;
}

}  // namespace

std::string CheckpointFileName(int64_t step) {
  return absl::StrFormat("%s%08d%s", kPrefix, step, kSuffix);
}

std::string CheckpointPath(const std::string& dir, int64_t step) {
  return absl::StrCat(dir, "/", CheckpointFileName(step));
}

std::string TemporaryCheckpointPath(const std::string& dir, int64_t step) {
  return absl::StrCat(CheckpointPath(dir, step), ".tmp");
}

absl::Status CommitFile(const std::string& temporary, const std::string& path) {
  RETURN_IF_ERROR(Fsync(temporary, O_RDONLY));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return Errno(absl::StrCat("renaming ", temporary, " to"), path);
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return Fsync(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
}

absl::Status CommitCheckpoint(const std::string& dir, int64_t step) {
  RETURN_IF_ERROR(CommitFile(TemporaryCheckpointPath(dir, step), CheckpointPath(dir, step)));
  const std::string line = absl::StrCat(CheckpointFileName(step), "\n");
  return WriteFileAtomically(absl::StrCat(dir, "/latest"), {line});
}

absl::StatusOr<int64_t> ReadLatestStep(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/latest");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no checkpoint yet: no ", path));
  std::string text(256, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  const int64_t step = StepOf(absl::StripSuffix(text, "\n"));
  if (step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " does not name a checkpoint file (step-NNNNNNNN.h5)"));
  }
  return step;
}

absl::StatusOr<std::string> ResolveCheckpointPath(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint at ", path, ": no such file"));
  }
  if (!std::filesystem::is_directory(status)) return path;
  for (const std::string& dir : {path, absl::StrCat(path, "/checkpoints")}) {
    if (!std::filesystem::exists(absl::StrCat(dir, "/latest"), error)) continue;
    ASSIGN_OR_RETURN(const int64_t step, ReadLatestStep(dir));
    return CheckpointPath(dir, step);
  }
  return absl::NotFoundError(absl::StrCat(
      "no checkpoint in ", path, ": neither ", path, "/latest nor ", path,
      "/checkpoints/latest exists (expected a checkpoint file, a checkpoint directory or a run "
      "directory with a committed checkpoint)"));
}

absl::StatusOr<std::string> ResolveCheckpointPathOnRankZero(Communicator& comm,
                                                            const std::string& path) {
  absl::StatusOr<std::string> resolved = std::string();
  if (comm.rank() == 0) resolved = ResolveCheckpointPath(path);
  RETURN_IF_ERROR(AgreeOnStatus(comm, resolved.status()));
  RETURN_IF_ERROR(BroadcastBytes(comm, 0, &*resolved));
  return resolved;
}

absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& dir) {
  std::error_code error;
  std::vector<int64_t> steps;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const int64_t step = StepOf(entry.path().filename().string());
    if (step >= 0) steps.push_back(step);
  }
  if (error) {
    return absl::InternalError(absl::StrCat("listing ", dir, ": ", error.message()));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::StatusOr<std::vector<int64_t>> ApplyRetention(const std::string& dir,
                                                    const RetentionPolicy& policy) {
  ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCheckpointSteps(dir));
  ASSIGN_OR_RETURN(int64_t latest, ReadLatestStep(dir));
  const size_t keep_last = static_cast<size_t>(std::max(1, policy.keep_last));
  std::vector<int64_t> deleted;
  for (size_t i = 0; i + keep_last < steps.size(); ++i) {
    const int64_t step = steps[i];
    if (step == latest || (policy.keep_every > 0 && step % policy.keep_every == 0)) continue;
    const std::string path = CheckpointPath(dir, step);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("deleting", path);
    deleted.push_back(step);
  }
  return deleted;
}

absl::StatusOr<int> RemoveLeftovers(const std::string& dir) {
  std::error_code error;
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    const bool checkpoint_tmp = absl::StartsWith(name, kPrefix) && absl::EndsWith(name, ".h5.tmp");
    if (!checkpoint_tmp && !absl::StartsWith(name, "latest.tmp.")) continue;
    if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT) {
      return Errno("deleting", entry.path().string());
    }
    ++removed;
  }
  if (error) return absl::InternalError(absl::StrCat("listing ", dir, ": ", error.message()));
  return removed;
}

}  // namespace usine
