// CUDA runtime error translation: turns a cudaError_t into an absl::Status carrying the
// call, file:line and CUDA's own name and message, and clears the error CUDA keeps for
// the next cudaGetLastError() so that it does not surface at an unrelated later call.
//
//   RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaMemcpyAsync(dst, src, n, kind, stream)));
//
// Only for translation units compiled with the CUDA toolkit (USINE_WITH_CUDA).
#ifndef USINE_RUNTIME_CORE_CUDA_STATUS_H_
#define USINE_RUNTIME_CORE_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#define USINE_CUDA_STATUS(expr) ::usine::CudaStatus((expr), #expr, __FILE__, __LINE__)

namespace usine {

[[nodiscard]] inline absl::Status CudaStatus(cudaError_t err, const char* expr, const char* file,
                                             int line) {
  if (err == cudaSuccess) return absl::OkStatus();
  cudaGetLastError();  // Reset the non-sticky error state; sticky errors persist in CUDA.
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (err) {
    case cudaErrorMemoryAllocation:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    case cudaErrorInvalidValue:
      code = absl::StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  return absl::Status(
      code, absl::StrCat(SourceLocation(file, line), ": ", expr,
                         " failed: ", cudaGetErrorString(err), " (", cudaGetErrorName(err), ")"));
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_CUDA_STATUS_H_
