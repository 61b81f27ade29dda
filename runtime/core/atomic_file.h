// Files that appear complete or not at all: token shards, manifests, checkpoints.
//
//   RETURN_IF_ERROR(WriteFileAtomically("out/manifest.json", {json}));
//
// The pieces are written, in order, to `<path>.tmp.<pid>` in the same directory, which is
// fsynced and renamed to `path` (replacing a file there); then the directory is fsynced. A
// reader, or a directory watcher, sees the old file (or none) or the whole new one, also
// after a crash. On failure the temporary file is removed and the error names the file and
// the step that failed (ResourceExhausted when the disk is full).
// Thread-safety: safe from any thread for distinct paths.
#ifndef USINE_RUNTIME_CORE_ATOMIC_FILE_H_
#define USINE_RUNTIME_CORE_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace usine {

[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path,
                                               absl::Span<const absl::string_view> pieces);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_ATOMIC_FILE_H_
