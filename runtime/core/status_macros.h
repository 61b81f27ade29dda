// Status propagation macros. Debian's Abseil (20220623) has no RETURN_IF_ERROR or
// ASSIGN_OR_RETURN; these are usine's, defined once here.
//
//   absl::StatusOr<Tensor> MakeBuffer(...) {
//     RETURN_IF_ERROR(CheckShape(shape));
//     ASSIGN_OR_RETURN(Tensor t, Tensor::Empty(shape, DType::kF32, device));
//     return t;
//   }
#ifndef USINE_RUNTIME_CORE_STATUS_MACROS_H_
#define USINE_RUNTIME_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    if (::absl::Status usine_status_ = (expr); !usine_status_.ok()) { \
      return usine_status_;                                           \
    }                                                                 \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves
// the value into `lhs`, which may be a declaration (`ASSIGN_OR_RETURN(auto x, F())`).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  USINE_ASSIGN_OR_RETURN_IMPL_(USINE_STATUS_CONCAT_(usine_statusor_, __LINE__), lhs, rexpr)

#define USINE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs,                                  \
                                     rexpr) /* NOLINT(bugprone-macro-parentheses) */ \
  auto statusor = (rexpr);                                                           \
  if (!statusor.ok()) {                                                              \
    return std::move(statusor).status();                                             \
  }                                                                                  \
  lhs = std::move(statusor).value()

#define USINE_STATUS_CONCAT_INNER_(a, b) a##b
#define USINE_STATUS_CONCAT_(a, b) USINE_STATUS_CONCAT_INNER_(a, b)

namespace usine {

// Returns `status` with `context` prepended to its message ("context: message"); OK stays OK.
[[nodiscard]] inline absl::Status WithContext(const absl::Status& status,
                                              absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// Formats "file:line: " with the file's directory stripped, for error messages.
[[nodiscard]] inline std::string SourceLocation(const char* file, int line) {
  absl::string_view path(file);
  if (size_t slash = path.rfind('/'); slash != absl::string_view::npos) {
    path.remove_prefix(slash + 1);
  }
  return absl::StrCat(path, ":", line);
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_STATUS_MACROS_H_
