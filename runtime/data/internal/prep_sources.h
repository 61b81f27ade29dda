// The files `usine prep` reads: listing the inputs, dealing the files to ranks, and the
// train/validation choice per document. See runtime/data/prep.h for the rules.
#ifndef USINE_RUNTIME_DATA_INTERNAL_PREP_SOURCES_H_
#define USINE_RUNTIME_DATA_INTERNAL_PREP_SOURCES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/data/prep.h"

namespace usine::data_internal {

enum class SourceKind { kText, kJsonl };

struct PrepSource {
  std::string path;  // As listed: the input, or the input joined with the path below it.
  SourceKind kind = SourceKind::kText;
  int64_t bytes = 0;
};

struct SourcePlan {
  std::vector<PrepSource> sources;
  std::vector<PrepSkipped> skipped;  // Inputs that could not be listed (OnError::kSkip).
};

// The files named by `inputs`: files as given, directories expanded (recursively, in byte
// order, without names starting with "." and without `out_dir`), each file once. An input
// that does not exist or a directory that cannot be listed is an error naming it, or with
// kSkip an entry of `skipped`. Files are not opened here: one that cannot be read fails
// when it is read.
[[nodiscard]] absl::StatusOr<SourcePlan> ListSources(const std::vector<std::string>& inputs,
                                                     const std::string& out_dir, OnError on_error);

// The indices of the sources that each of `ranks` ranks reads, ascending: the largest file
// goes first to the rank with the fewest bytes so far (ties: the lower index, the lower
// rank), so the ranks' shares are close in bytes and the same on every rank.
std::vector<std::vector<int>> AssignSources(const std::vector<PrepSource>& sources, int ranks);

// True when document `index` of the file at `path` goes to validation: a hash of both,
// uniform in [0, 1), is below `val_fraction`.
bool HashesToValidation(absl::string_view path, int64_t index, double val_fraction);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_PREP_SOURCES_H_
