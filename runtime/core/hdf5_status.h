// HDF5 error translation: a negative herr_t/hid_t becomes an absl::Status carrying the
// call, file:line and the whole HDF5 error stack of the calling thread (innermost first),
// which is then cleared. Turn HDF5's own printing off (H5Eset_auto2(H5E_DEFAULT, nullptr,
// nullptr)) where these statuses are used, or it prints the same stack to stderr.
//
//   RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, xfer, buf)));
//   ASSIGN_OR_RETURN(hid_t file, USINE_HDF5_ID(H5Fopen(path, H5F_ACC_RDONLY, fapl)));
//
// Only for translation units that link HDF5.
#ifndef USINE_RUNTIME_CORE_HDF5_STATUS_H_
#define USINE_RUNTIME_CORE_HDF5_STATUS_H_

#include <string>

#include <hdf5.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#define USINE_HDF5_STATUS(expr) \
  ::usine::Hdf5Status(static_cast<int64_t>(expr), #expr, __FILE__, __LINE__)
#define USINE_HDF5_ID(expr) ::usine::Hdf5Id((expr), #expr, __FILE__, __LINE__)

namespace usine {
namespace hdf5_internal {

inline herr_t AppendError(unsigned depth, const H5E_error2_t* error, void* out) {
  auto* text = static_cast<std::string*>(out);
  absl::StrAppend(text, depth == 0 ? "" : "; ",
                  error->func_name != nullptr ? error->func_name : "?",
                  "(): ", error->desc != nullptr ? error->desc : "");
  char minor[128] = "";
  if (H5Eget_msg(error->min_num, nullptr, minor, sizeof(minor)) > 0) {
    absl::StrAppend(text, " [", minor, "]");
  }
  return 0;
}

// Reads and clears the calling thread's HDF5 error stack.
inline std::string TakeErrorStack() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, &AppendError, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? std::string("no HDF5 error stack") : text;
}

}  // namespace hdf5_internal

[[nodiscard]] inline absl::Status Hdf5Status(int64_t result, const char* expr, const char* file,
                                             int line) {
  if (result >= 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(SourceLocation(file, line), ": ", expr,
                                          " failed: ", hdf5_internal::TakeErrorStack()));
}

[[nodiscard]] inline absl::StatusOr<hid_t> Hdf5Id(hid_t id, const char* expr, const char* file,
                                                  int line) {
  if (id >= 0) return id;
  return Hdf5Status(-1, expr, file, line);
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_HDF5_STATUS_H_
