// NCCL error translation: the result code's text and NCCL's last detailed message.
//
//   RETURN_IF_ERROR(USINE_NCCL_STATUS(ncclAllReduce(send, recv, n, type, op, comm, stream)));
//
// ncclInProgress (a non-blocking communicator still working) is not an error for the
// caller that polls; it is reported as kUnavailable so that such callers can tell it apart.
// Only for translation units that link NCCL.
#ifndef USINE_RUNTIME_CORE_NCCL_STATUS_H_
#define USINE_RUNTIME_CORE_NCCL_STATUS_H_

#include <nccl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#define USINE_NCCL_STATUS(expr) ::usine::NcclStatus((expr), #expr, __FILE__, __LINE__)

namespace usine {

[[nodiscard]] inline absl::Status NcclStatus(ncclResult_t err, const char* expr, const char* file,
                                             int line, ncclComm_t comm = nullptr) {
  if (err == ncclSuccess) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (err) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ncclRemoteError:
    case ncclSystemError:
      code = absl::StatusCode::kAborted;
      break;
    case ncclInProgress:
      code = absl::StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  const char* detail = ncclGetLastError(comm);
  return absl::Status(code, absl::StrCat(SourceLocation(file, line), ": ", expr,
                                         " failed: ", ncclGetErrorString(err),
                                         detail != nullptr && detail[0] != '\0' ? " — " : "",
                                         detail != nullptr ? detail : ""));
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_NCCL_STATUS_H_
