// Watches a directory where complete token shards land, for DataStream's watch mode and
// `usine finetune --watch`.
//
// The landing protocol (docs/formats.md): a producer writes a shard under a name that does
// not end in ".bin" (WriteTokenShard uses "<name>.bin.tmp.<pid>"), flushes it, then renames
// it to its final "<name>.bin" in the same directory. rename(2) is atomic, so a name ending
// in ".bin" always denotes a complete file. Hidden names (".x.bin") are ignored.
//
//   ASSIGN_OR_RETURN(auto watcher, DirectoryWatcher::Open("incoming/"));
//   ASSIGN_OR_RETURN(std::vector<std::string> names, watcher->List());  // sorted
//   ASSIGN_OR_RETURN(bool changed, watcher->Wait(absl::Seconds(1)));     // then List() again
//
// Changes are noticed with inotify on local file systems and by polling on network ones
// (NFS, SMB, Lustre, GPFS and FUSE mounts, where inotify does not see other hosts' writes),
// or as the caller chooses. Either way List() is the truth; Wait() only saves idle polling.
//
// Thread-compatible: one thread at a time.
#ifndef USINE_RUNTIME_DATA_DIRECTORY_WATCHER_H_
#define USINE_RUNTIME_DATA_DIRECTORY_WATCHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace usine {

enum class WatchMethod {
  kAuto,     // inotify, unless the directory is on a network file system or inotify fails
  kInotify,  // inotify or an error
  kPolling,  // list the directory every interval
};

class DirectoryWatcher {
 public:
  // The directory must exist.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DirectoryWatcher>> Open(
      std::string directory, WatchMethod method = WatchMethod::kAuto);
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;
  ~DirectoryWatcher();

  const std::string& directory() const { return directory_; }
  bool uses_inotify() const { return inotify_fd_ >= 0; }

  // The names (not paths) of the complete shards in the directory now, sorted bytewise.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List() const;

  // Blocks until a file was renamed into or closed in the directory (inotify), or until
  // `timeout` has passed (always, when polling). True when an event was seen.
  [[nodiscard]] absl::StatusOr<bool> Wait(absl::Duration timeout);

 private:
  DirectoryWatcher(std::string directory, int inotify_fd)
      : directory_(std::move(directory)), inotify_fd_(inotify_fd) {}

  std::string directory_;
  int inotify_fd_;  // -1 when polling
};

// Whether `name` is a complete shard's name under the landing protocol.
bool IsLandedShardName(absl::string_view name);

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_DIRECTORY_WATCHER_H_
