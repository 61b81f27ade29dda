// "Did you mean ...?" for a misspelt name: the Levenshtein distance and the nearest of a list
// of known names.
//
//   NearestName("optim.lrr", {"optim.lr", "optim.eps"}) == "optim.lr"
#ifndef USINE_RUNTIME_CORE_NEAREST_NAME_H_
#define USINE_RUNTIME_CORE_NEAREST_NAME_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"

namespace usine {

// Single-character insertions, deletions and substitutions that turn a into b.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The known name nearest to `name` (the first of equals), if it is near enough to be a slip:
// at most max(2, |name| / 3) edits away, or one of the two a prefix of the other (e.g.
// "warmup" for "warmup_steps"). Empty names match nothing.
std::optional<absl::string_view> NearestName(absl::string_view name,
                                             const std::vector<absl::string_view>& known);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_NEAREST_NAME_H_
