// What the flash attention kernels share, in f32 (cuda_flash_attention.cu) and on the bf16
// tensor cores (cuda_flash_attention_bf16.cu): the grid of one block per head and tile of
// kFlashTile rows (FlashHead, LastTileFirst, FirstTileFirst), where a head's rows lie in the
// [B, T, parts H D] arrays, the causal mask, and the launch with a raised shared-memory limit.
// Only for .cu files.
//
//   const float* q_rows = HeadRows(qkv, shape, 3, 0, FlashHead(shape));  // row t at + t 3 H D
//   return LaunchFlashKernel(MyKernel<64>, bytes, kThreads, shape, stream, qkv, shape, out);
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_TILES_CUH_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_TILES_CUH_

#include <algorithm>
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

// Tiles of kFlashTile rows per head.
__host__ __device__ inline int64_t FlashTiles(const FlashShape& s) {
  return (s.seq + kFlashTile - 1) / kFlashTile;
}

// The grid is one-dimensional, FlashTiles(s) consecutive blocks per head: a GPU starts blocks
// in order of their index, so the blocks that run at once cover a few heads, whose keys and
// values stay in L2 while all of those heads' tiles read them (with the head as the fastest
// index, they would cover every head at once: all of B H's keys and values, as large as L2).
//
// This block's head, b H + h.
__device__ inline int64_t FlashHead(const FlashShape& s) {
  return static_cast<int64_t>(blockIdx.x) / FlashTiles(s);
}
// This block's place among its head's blocks, in launch order.
__device__ inline int64_t FlashTileRank(const FlashShape& s) {
  return static_cast<int64_t>(blockIdx.x) % FlashTiles(s);
}
// The first row of this block's tile when the tiles with most work (the last query tiles in
// the forward and dq passes) are to start first.
__device__ inline int64_t LastTileFirst(const FlashShape& s) {
  return (FlashTiles(s) - 1 - FlashTileRank(s)) * kFlashTile;
}
// The first row of this block's tile when the first tiles are to start first (the key tiles of
// the dk/dv pass, which the most queries see).
__device__ inline int64_t FirstTileFirst(const FlashShape& s) {
  return FlashTileRank(s) * kFlashTile;
}

// Whether the launchers take the shape at all: head sizes in [1, kFlashMaxHeadDim], B H
// FlashTiles blocks within a grid's x.
inline bool ValidFlashShape(const FlashShape& s) {
  return s.head_dim >= 1 && s.head_dim <= kFlashMaxHeadDim && s.batch >= 0 && s.heads >= 1 &&
         s.seq >= 0 && s.batch * s.heads <= INT32_MAX / std::max<int64_t>(FlashTiles(s), 1);
}

inline bool EmptyFlashShape(const FlashShape& s) { return s.batch == 0 || s.seq == 0; }

inline dim3 FlashGrid(const FlashShape& s) {
  return dim3(static_cast<unsigned>(s.batch * s.heads * FlashTiles(s)));
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
