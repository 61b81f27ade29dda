#include "runtime/core/nearest_name.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/match.h"

namespace usine {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // One row of the dynamic-programming table at a time: row[j] is the distance between the
  // first i characters of a and the first j of b.
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<absl::string_view> NearestName(absl::string_view name,
                                             const std::vector<absl::string_view>& known) {
  if (name.empty()) return std::nullopt;
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  std::optional<absl::string_view> best;
  size_t best_distance = 0;
  for (absl::string_view candidate : known) {
    const size_t distance = EditDistance(name, candidate);
    const bool prefix = absl::StartsWith(candidate, name) || absl::StartsWith(name, candidate);
    if (distance > limit && !prefix) continue;
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace usine
