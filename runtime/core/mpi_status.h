// MPI error translation: the MPI error class and MPI_Error_string's message.
// MPI's default handler aborts the job on error; communicators that want these statuses
// must be set to MPI_ERRORS_RETURN (World does so for MPI_COMM_WORLD).
//
//   RETURN_IF_ERROR(USINE_MPI_STATUS(MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, comm)));
//
// Only for translation units that link MPI.
#ifndef USINE_RUNTIME_CORE_MPI_STATUS_H_
#define USINE_RUNTIME_CORE_MPI_STATUS_H_

#include <string>

#include <mpi.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#define USINE_MPI_STATUS(expr) ::usine::MpiStatus((expr), #expr, __FILE__, __LINE__)

namespace usine {

[[nodiscard]] inline std::string MpiErrorString(int err) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(err, text, &length) != MPI_SUCCESS) {
    return absl::StrCat("unknown MPI error ", err);
  }
  return std::string(text, length);
}

[[nodiscard]] inline absl::Status MpiStatus(int err, const char* expr, const char* file, int line) {
  if (err == MPI_SUCCESS) return absl::OkStatus();
  int error_class = MPI_ERR_UNKNOWN;
  MPI_Error_class(err, &error_class);
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (error_class) {
    case MPI_ERR_ARG:
    case MPI_ERR_COUNT:
    case MPI_ERR_TYPE:
    case MPI_ERR_OP:
    case MPI_ERR_RANK:
    case MPI_ERR_ROOT:
    case MPI_ERR_TAG:
    case MPI_ERR_COMM:
    case MPI_ERR_BUFFER:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case MPI_ERR_NO_MEM:
      code = absl::StatusCode::kResourceExhausted;
      break;
    default:
      break;
  }
  std::string message = MpiErrorString(err);
  if (error_class != err) absl::StrAppend(&message, " [class: ", MpiErrorString(error_class), "]");
  return absl::Status(code,
                      absl::StrCat(SourceLocation(file, line), ": ", expr, " failed: ", message));
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_MPI_STATUS_H_
