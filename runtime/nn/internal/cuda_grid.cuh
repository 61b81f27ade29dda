// Grid-stride launches of the nn CUDA elementwise kernels, int64 indices. Only for .cu files.
//
//   for (int64_t i = FirstIndex(); i < n; i += GridStride()) y[i] = ...;   // in the kernel
//   return LaunchElementwise(MyKernel, n, stream, x, n, y);                 // on the host
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_GRID_CUH_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_GRID_CUH_

#include <algorithm>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::nn_internal::cuda {

inline constexpr int kElementwiseThreads = 256;
// A few waves on current GPUs; the grid-stride loops cover any n.
inline constexpr int64_t kMaxElementwiseBlocks = 8192;

__device__ inline int64_t FirstIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t GridStride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Launches `kernel` with enough blocks for n elements (none for n <= 0, which is not a valid
// grid) and returns the launch error.
template <typename... Params, typename... Args>
cudaError_t LaunchElementwise(void (*kernel)(Params...), int64_t n, cudaStream_t stream,
                              Args... args) {
  if (n <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(
      std::min((n + kElementwiseThreads - 1) / kElementwiseThreads, kMaxElementwiseBlocks));
  kernel<<<blocks, kElementwiseThreads, 0, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_GRID_CUH_
