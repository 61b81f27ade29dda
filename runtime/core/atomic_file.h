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

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace usine {

[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path,
                                               absl::Span<const absl::string_view> pieces);

// The same, for a file made piece by piece rather than held whole (a model's weights):
// `produce` calls `write` with each piece in order, and its error, or write's, fails the
// write as above (nothing at `path` changes).
//
//   RETURN_IF_ERROR(WriteFileAtomically(path, [&](const PieceWriter& write) -> absl::Status {
//     for (const Tensor& t : tensors) RETURN_IF_ERROR(write(BytesOf(t)));
//     return absl::OkStatus();
//   }));
using PieceWriter = absl::FunctionRef<absl::Status(absl::string_view)>;
[[nodiscard]] absl::Status WriteFileAtomically(
    const std::string& path, absl::FunctionRef<absl::Status(const PieceWriter&)> produce);

// Syncs the directory that holds `path` (its entries: a file or directory renamed into it),
// so that the entry survives a crash. The error names the directory.
[[nodiscard]] absl::Status SyncDirectoryOf(const std::string& path);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_ATOMIC_FILE_H_
