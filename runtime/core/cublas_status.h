// cuBLAS / cuBLASLt error translation (both return cublasStatus_t). The messages come from
// cuBLASLt, so only libcublasLt is needed.
//
//   RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatmul(handle, ...)));
//
// Only for translation units compiled with the CUDA toolkit (USINE_WITH_CUDA).
#ifndef USINE_RUNTIME_CORE_CUBLAS_STATUS_H_
#define USINE_RUNTIME_CORE_CUBLAS_STATUS_H_

#include <cublasLt.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#define USINE_CUBLAS_STATUS(expr) ::usine::CublasStatus((expr), #expr, __FILE__, __LINE__)

namespace usine {

[[nodiscard]] inline absl::Status CublasStatus(cublasStatus_t err, const char* expr,
                                               const char* file, int line) {
  if (err == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (err) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case CUBLAS_STATUS_INVALID_VALUE:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      code = absl::StatusCode::kUnimplemented;
      break;
    case CUBLAS_STATUS_NOT_INITIALIZED:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    default:
      break;
  }
  return absl::Status(code, absl::StrCat(SourceLocation(file, line), ": ", expr,
                                         " failed: ", cublasLtGetStatusString(err), " (",
                                         cublasLtGetStatusName(err), ")"));
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_CUBLAS_STATUS_H_
