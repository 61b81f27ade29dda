// cuda::Copy: one asynchronous CUDA copy on the given stream. With unified addressing the
// runtime infers the direction of a cpu <-> GPU or same-GPU copy (cudaMemcpyDefault); a copy
// between two GPUs goes through the peer path, which works with or without peer access.
#include <cuda_runtime_api.h>

#include "absl/status/status.h"

#include "runtime/core/cuda_status.h"
#include "runtime/kernels/internal/backends.h"

namespace usine::kernels_internal::cuda {

absl::Status Copy(const Tensor& src, const Tensor& dst, StreamHandle stream) {
  const Device from = src.device(), to = dst.device();
  if (from.is_cuda() && to.is_cuda() && from != to) {
    return USINE_CUDA_STATUS(cudaMemcpyPeerAsync(dst.raw_data(), to.index(), src.raw_data(),
                                                 from.index(), src.nbytes(), stream));
  }
  // Copy's contract allows src and dst to overlap only when identical: nothing to move.
  if (from == to && src.raw_data() == dst.raw_data()) return absl::OkStatus();
  return USINE_CUDA_STATUS(
      cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDefault, stream));
}

}  // namespace usine::kernels_internal::cuda
