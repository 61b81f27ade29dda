// Device-side building blocks of the nn CUDA kernels: warp and block reductions along fixed
// trees, and per-column sums over rows in two fixed-shape passes. Every order of summation
// is a function of the problem size alone (never of scheduling, and no atomics), so the same
// input gives the same bits on every run. Only for .cu files.
//
//   const float row_sum = WarpSum(partial);           // every lane gets the same bits
//   ColumnPartialsKernel<<<ColumnSumGrid(rows, cols), ColumnSumBlock(), 0, stream>>>(
//       DyTimesXhat{...}, rows, cols, partials);
//   AddColumnPartialsKernel<<<...>>>(partials, ColumnSumChunks(rows), cols, sums);
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_REDUCE_CUH_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_REDUCE_CUH_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::nn_internal::cuda {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

// The sum of `v` over the 32 lanes of a warp (all active), returned to every lane. A butterfly:
// at each step lanes i and i^offset add the same two values (a + b == b + a exactly), so every
// lane ends with the same bits.
__device__ inline float WarpSum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = __fadd_rn(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

__device__ inline float WarpMax(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// The sum (kMax: the maximum) of `v` over a block of kThreads threads (a multiple of 32, at
// most 1024), returned to every thread: warp butterflies, then one warp over the warps'
// results. Every thread of the block must call it; `scratch` is kThreads / 32 shared floats
// that the call may overwrite (a __syncthreads() separates two calls that share it).
template <int kThreads, bool kMax = false>
__device__ float BlockReduce(float v, float* scratch) {
  static_assert(kThreads % kWarpSize == 0 && kThreads <= 1024);
  constexpr int kWarps = kThreads / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  v = kMax ? WarpMax(v) : WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const float identity = kMax ? -INFINITY : 0.0f;
  float w = lane < kWarps ? scratch[lane] : identity;
  w = kMax ? WarpMax(w) : WarpSum(w);
  __syncthreads();  // scratch may be reused by the caller's next reduction.
  return w;
}

// BlockReduce's sums of two values at once, in place (the same trees, one pair of barriers):
// `scratch` is 2 * kThreads / 32 shared floats.
template <int kThreads>
__device__ void BlockSums(float& a, float& b, float* scratch) {
  static_assert(kThreads % kWarpSize == 0 && kThreads <= 1024);
  constexpr int kWarps = kThreads / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  a = WarpSum(a);
  b = WarpSum(b);
  if (lane == 0) {
    scratch[warp] = a;
    scratch[kWarps + warp] = b;
  }
  __syncthreads();
  a = WarpSum(lane < kWarps ? scratch[lane] : 0.0f);
  b = WarpSum(lane < kWarps ? scratch[kWarps + lane] : 0.0f);
  __syncthreads();  // scratch may be reused by the caller's next reduction.
}

// Column sums of a [rows, cols] array whose element (r, c) is value(r, c), in two passes:
// the rows are cut into ColumnSumChunks(rows) chunks of consecutive rows; pass one writes the
// sum of each chunk's column c to partials[chunk * cols + c] (within a block: 8 row lanes each
// summing every 8th row of the chunk in order, then a fixed tree over the lanes); pass two
// adds, in chunk order, each column's partials into sums[c].
inline constexpr int kColumnTile = 32;  // Columns per block (one warp wide).
inline constexpr int kRowLanes = 8;     // Rows processed side by side in a block.
inline constexpr int64_t kMaxColumnChunks = 4096;

// A function of rows alone: at least 1, at most kMaxColumnChunks, about rows / 128.
inline int64_t ColumnSumChunks(int64_t rows) {
  return std::clamp<int64_t>((rows + 127) / 128, 1, kMaxColumnChunks);
}
inline int64_t ColumnSumChunkRows(int64_t rows) {
  const int64_t chunks = ColumnSumChunks(rows);
  return std::max<int64_t>(1, (rows + chunks - 1) / chunks);
}
inline dim3 ColumnSumBlock() { return dim3(kColumnTile, kRowLanes); }
inline dim3 ColumnSumGrid(int64_t rows, int64_t cols) {
  return dim3(static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile),
              static_cast<unsigned>(ColumnSumChunks(rows)));
}

template <typename ValueFn>
__global__ void ColumnPartialsKernel(ValueFn value, int64_t rows, int64_t cols, int64_t chunk_rows,
                                     float* partials) {
  __shared__ float lanes[kRowLanes][kColumnTile];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnTile + threadIdx.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  float acc = 0.0f;
  if (c < cols) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      acc = __fadd_rn(acc, value(r, c));
    }
  }
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  for (int width = kRowLanes / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.y) < width) {
      lanes[threadIdx.y][threadIdx.x] =
          __fadd_rn(lanes[threadIdx.y][threadIdx.x], lanes[threadIdx.y + width][threadIdx.x]);
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols) partials[blockIdx.y * cols + c] = lanes[0][threadIdx.x];
}

// A template so that each .cu file that launches it gets its own instance (no relocatable
// device code in this build).
template <typename T>
__global__ void AddColumnPartialsKernel(const T* partials, int64_t chunks, int64_t cols, T* sums) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  T acc = 0;
  for (int64_t k = 0; k < chunks; ++k) acc = __fadd_rn(acc, partials[k * cols + c]);
  sums[c] = __fadd_rn(sums[c], acc);
}

// Both passes on `stream`. REQUIRES: partials holds ColumnSumChunks(rows) * cols floats, not
// used by other work until this finishes (stream order); rows, cols >= 1.
template <typename ValueFn>
cudaError_t LaunchAccumulateColumnSumsOf(ValueFn value, int64_t rows, int64_t cols, float* partials,
                                         float* sums, cudaStream_t stream) {
  ColumnPartialsKernel<<<ColumnSumGrid(rows, cols), ColumnSumBlock(), 0, stream>>>(
      value, rows, cols, ColumnSumChunkRows(rows), partials);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>((cols + kThreads - 1) / kThreads);
  AddColumnPartialsKernel<<<blocks, kThreads, 0, stream>>>(partials, ColumnSumChunks(rows), cols,
                                                           sums);
  return cudaGetLastError();
}

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_REDUCE_CUH_
