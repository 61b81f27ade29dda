// Deterministic sums behind launch.h. The grid is a function of n alone, thread t of it always
// accumulates elements t, t + G, t + 2G, ... (G threads in the grid) in that order, and both
// passes combine their values along the same shared-memory tree, so the same input gives the
// same bits on every run, whatever else the device is doing. No atomics.
#include <algorithm>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/tensor_blocks.h"
#include "runtime/kernels/internal/float_convert.h"

namespace usine::kernels_internal::cuda {
namespace {

constexpr int kThreads = 256;  // A power of two, for the tree in BlockSum.
// Enough blocks to fill current GPUs for the one streaming pass; few enough partials for
// the second pass to be one short block.
constexpr int64_t kMaxBlocks = 1024;

// The sum of the kThreads values `v` of a block along a fixed tree, returned to every thread.
// Every thread of the block must call it.
__device__ float BlockSum(float v) {
  __shared__ float values[kThreads];
  values[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) {
      values[threadIdx.x] = __fadd_rn(values[threadIdx.x], values[threadIdx.x + width]);
    }
    __syncthreads();
  }
  return values[0];
}

// The partial sum of block `block` of `blocks` over x[0, n): the elements block * kThreads + t,
// then that plus blocks * kThreads, ... for each thread t, combined along BlockSum's tree.
// Every thread of the block must call it.
template <typename T, bool kSquares>
__device__ float PartialSum(const T* x, int64_t n, int64_t block, int64_t blocks) {
  const int64_t stride = blocks * kThreads;
  float acc = 0.0f;
  for (int64_t i = block * kThreads + threadIdx.x; i < n; i += stride) {
    const float v = ToFloat(x[i]);
    // A fused multiply-add rounds v * v + acc once: closer to the cpu's f64 accumulation, and
    // written explicitly so that the rounding does not depend on the compiler's choice.
    acc = kSquares ? __fmaf_rn(v, v, acc) : __fadd_rn(acc, v);
  }
  return BlockSum(acc);
}

// The sum of partials[0, count), then its square root with `square_root`. Every thread of the
// block must call it.
__device__ float FinalSum(const float* partials, int64_t count, bool square_root) {
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc = __fadd_rn(acc, partials[i]);
  const float total = BlockSum(acc);
  return square_root ? __fsqrt_rn(total) : total;
}

template <typename T, bool kSquares>
__global__ void PartialSumsKernel(const T* x, int64_t n, float* partials) {
  const float block_sum = PartialSum<T, kSquares>(x, n, blockIdx.x, gridDim.x);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

__global__ void FinalSumKernel(const float* partials, int count, bool square_root, float* out) {
  const float total = FinalSum(partials, count, square_root);
  if (threadIdx.x == 0) *out = total;
}

// SumPartialCount on the device.
__device__ int64_t PartialCount(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

// Block b of tensor i (tensor_blocks.h): tensor i's partial b, of its PartialCount.
template <typename T>
__global__ void PartialSquaresOfTensorsKernel(SumTensors tensors, TensorBlocks blocks,
                                              float* partials) {
  const int i = blocks.TensorOf(static_cast<int>(blockIdx.x));
  const int64_t b = blockIdx.x - blocks.first[i];
  const float block_sum =
      PartialSum<T, true>(static_cast<const T*>(tensors.x[i]), tensors.n[i], b, blocks.Count(i));
  if (threadIdx.x == 0) partials[tensors.partial_offset[i] + b] = block_sum;
}

// Block i: tensor i's norm from its partials.
__global__ void NormsOfTensorsKernel(SumTensors tensors, const float* partials, float* out) {
  const int i = blockIdx.x;
  const float norm = FinalSum(partials + tensors.partial_offset[i], PartialCount(tensors.n[i]),
                              /*square_root=*/true);
  if (threadIdx.x == 0) out[i] = norm;
}

}  // namespace

int SumPartialCount(int64_t n) {
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

template <typename T>
cudaError_t LaunchSum(const T* x, int64_t n, bool squares, bool square_root, float* partials,
                      float* out, cudaStream_t stream) {
  // n == 0 still runs both passes: one block whose threads find no element and sum to 0.
  const int blocks = SumPartialCount(n);
  if (squares) {
    PartialSumsKernel<T, true><<<blocks, kThreads, 0, stream>>>(x, n, partials);
  } else {
    PartialSumsKernel<T, false><<<blocks, kThreads, 0, stream>>>(x, n, partials);
  }
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  FinalSumKernel<<<1, kThreads, 0, stream>>>(partials, blocks, square_root, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchL2Norms(const SumTensors& tensors, float* partials, float* out,
                          cudaStream_t stream) {
  if (tensors.count <= 0) return cudaSuccess;
  // A block per partial: SumPartialCount(n) of them, one for an empty tensor too (its 0).
  static_assert(SumTensors::kMaxTensors <= TensorBlocks::kMaxTensors);
  TensorBlocks blocks;
  blocks.count = tensors.count;
  for (int i = 0; i < tensors.count; ++i) {
    blocks.first[i + 1] = blocks.first[i] + SumPartialCount(tensors.n[i]);
  }
  PartialSquaresOfTensorsKernel<T>
      <<<blocks.first[tensors.count], kThreads, 0, stream>>>(tensors, blocks, partials);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  NormsOfTensorsKernel<<<tensors.count, kThreads, 0, stream>>>(tensors, partials, out);
  return cudaGetLastError();
}

template cudaError_t LaunchL2Norms<float>(const SumTensors&, float*, float*, cudaStream_t);
template cudaError_t LaunchL2Norms<BFloat16>(const SumTensors&, float*, float*, cudaStream_t);
template cudaError_t LaunchL2Norms<Float16>(const SumTensors&, float*, float*, cudaStream_t);

template cudaError_t LaunchSum<float>(const float*, int64_t, bool, bool, float*, float*,
                                      cudaStream_t);
template cudaError_t LaunchSum<BFloat16>(const BFloat16*, int64_t, bool, bool, float*, float*,
                                         cudaStream_t);
template cudaError_t LaunchSum<Float16>(const Float16*, int64_t, bool, bool, float*, float*,
                                        cudaStream_t);

}  // namespace usine::kernels_internal::cuda
