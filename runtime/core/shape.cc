#include "runtime/core/shape.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace usine {

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

absl::Status Shape::Validate() const {
  constexpr int64_t kMaxElements = int64_t{1} << 62;
  int64_t n = 1;
  for (int i = 0; i < rank(); ++i) {
    const int64_t d = dims_[i];
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ToString(), ": dimension ", i, " is negative"));
    }
    if (d != 0 && n > kMaxElements / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ToString(), ": more than 2^62 elements"));
    }
    n *= d;
  }
  return absl::OkStatus();
}

std::string Shape::ToString() const { return absl::StrCat("[", absl::StrJoin(dims_, ", "), "]"); }

}  // namespace usine
