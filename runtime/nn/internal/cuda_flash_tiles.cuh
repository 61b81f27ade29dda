// What the flash attention kernels share, in f32 (cuda_flash_attention.cu) and on the bf16
// tensor cores (cuda_flash_attention_bf16.cu): the grid of one block per head (blockIdx.x =
// b H + h) and tile of kFlashTile rows (blockIdx.y), where a head's rows lie in the [B, T,
// parts H D] arrays, the causal mask, and the launch with a raised shared-memory limit. Only
// for .cu files.
//
//   const float* q_rows = HeadRows(qkv, shape, 3, 0, blockIdx.x);  // row t at + t * 3 H D
//   return LaunchFlashKernel(MyKernel<64>, bytes, kThreads, shape, stream, qkv, shape, out);
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_TILES_CUH_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_TILES_CUH_

#include <cmath>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/nn/internal/cuda_flash_attention.h"

namespace usine::nn_internal::cuda {

inline constexpr int kFlashTile = 64;  // Queries per query tile, keys per key tile.

// Row 0 of head bh's columns of part `part` in a [B, T, parts H D] array; row t is at
// + t * parts H D.
template <typename Float>
__device__ Float* HeadRows(Float* rows, const FlashShape& s, int parts, int part, int64_t bh) {
  const int64_t b = bh / s.heads, h = bh % s.heads, c = s.heads * s.head_dim;
  return rows + b * s.seq * parts * c + part * c + h * s.head_dim;
}

// Whether query t sees key `key`: the causal mask, and keys past the sequence are padding.
// Query rows past the sequence (padding) see every real key, so that their softmax stays finite
// (their q is 0); they are never written, and in the backward pass their dout of 0 makes their
// contributions 0.
__device__ inline bool Visible(int64_t t, int64_t key, int64_t seq) {
  return key <= t && key < seq;
}

// The first row of this block's tile when the tiles with most work (the last query tiles in
// the forward and dq passes) are to start first.
__device__ inline int64_t LastTileFirst() {
  return static_cast<int64_t>(gridDim.y - 1 - blockIdx.y) * kFlashTile;
}

inline constexpr int64_t kFlashMaxGridY = 65535;

// Whether the launchers take the shape at all: head sizes in [1, kFlashMaxHeadDim], at most
// 65535 tiles, B H within a grid's x.
inline bool ValidFlashShape(const FlashShape& s) {
  const int64_t tiles = (s.seq + kFlashTile - 1) / kFlashTile;
  return s.head_dim >= 1 && s.head_dim <= kFlashMaxHeadDim && s.batch >= 0 && s.heads >= 1 &&
         s.seq >= 0 && tiles <= kFlashMaxGridY && s.batch * s.heads <= INT32_MAX;
}

inline bool EmptyFlashShape(const FlashShape& s) { return s.batch == 0 || s.seq == 0; }

inline dim3 FlashGrid(const FlashShape& s) {
  return dim3(static_cast<unsigned>(s.batch * s.heads),
              static_cast<unsigned>((s.seq + kFlashTile - 1) / kFlashTile));
}

// 1 / sqrt(D), the scores' scale.
inline float FlashScale(const FlashShape& s) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
}

// Raises the kernel's dynamic shared memory limit to `bytes`, then launches it on FlashGrid(s)
// with `threads` threads per block.
template <typename... Params, typename... Args>
cudaError_t LaunchFlashKernel(void (*kernel)(Params...), int bytes, int threads,
                              const FlashShape& s, cudaStream_t stream, Args... args) {
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) return err;
  kernel<<<FlashGrid(s), threads, bytes, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_TILES_CUH_
