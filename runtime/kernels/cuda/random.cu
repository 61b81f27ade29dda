// Random fills behind launch.h. One thread per Philox block: it computes the block once and
// writes the (up to) four output elements whose stream index falls in it, through the same
// philox.h functions as cpu/random.cc, so both sides give the same bits.
#include <algorithm>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/kernels/internal/philox.h"

namespace usine::kernels_internal::cuda {
namespace {

constexpr int kThreads = 256;
// A few waves on current GPUs; the grid-stride loop covers any number of Philox blocks.
constexpr int64_t kMaxBlocks = 8192;

struct Uniform {
  float low, high;
  __device__ float operator()(const Philox4& block, int lane) const {
    return UniformFromBlock(block, lane, low, high);
  }
};

struct Normal {
  float mean, stddev;
  __device__ float operator()(const Philox4& block, int lane) const {
    return NormalFromBlock(block, lane, mean, stddev);
  }
};

// Thread j covers Philox block offset / 4 + j: output elements 4 j - head + lane, lane 0..3,
// where head = offset % 4 is how far into its block the first element lies.
template <typename T, typename Distribution>
__global__ void RandomKernel(T* out, int64_t n, int64_t philox_blocks, uint64_t seed,
                             uint64_t offset, Distribution distribution) {
  const int64_t head = static_cast<int64_t>(offset % 4);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < philox_blocks;
       j += stride) {
    // Unsigned arithmetic wraps modulo 2^64, exactly like the cpu's (offset + i) / 4.
    const uint64_t first_index =
        offset - static_cast<uint64_t>(head) + 4 * static_cast<uint64_t>(j);
    const Philox4 block = PhiloxBlock(seed, first_index / 4);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = 4 * j - head + lane;
      if (i >= 0 && i < n) out[i] = FromFloat<T>(distribution(block, lane));
    }
  }
}

template <typename T, typename Distribution>
cudaError_t LaunchRandom(T* out, int64_t n, uint64_t seed, uint64_t offset,
                         Distribution distribution, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int64_t philox_blocks = (n + static_cast<int64_t>(offset % 4) + 3) / 4;
  const auto grid =
      static_cast<unsigned>(std::min((philox_blocks + kThreads - 1) / kThreads, kMaxBlocks));
  RandomKernel<T, Distribution>
      <<<grid, kThreads, 0, stream>>>(out, n, philox_blocks, seed, offset, distribution);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t LaunchRandomUniform(T* out, int64_t n, uint64_t seed, uint64_t offset, float low,
                                float high, cudaStream_t stream) {
  return LaunchRandom(out, n, seed, offset, Uniform{low, high}, stream);
}

template <typename T>
cudaError_t LaunchRandomNormal(T* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                               float stddev, cudaStream_t stream) {
  return LaunchRandom(out, n, seed, offset, Normal{mean, stddev}, stream);
}

#define USINE_INSTANTIATE_RANDOM(T)                                                          \
  template cudaError_t LaunchRandomUniform<T>(T*, int64_t, uint64_t, uint64_t, float, float, \
                                              cudaStream_t);                                 \
  template cudaError_t LaunchRandomNormal<T>(T*, int64_t, uint64_t, uint64_t, float, float,  \
                                             cudaStream_t);

USINE_INSTANTIATE_RANDOM(float)
USINE_INSTANTIATE_RANDOM(BFloat16)
USINE_INSTANTIATE_RANDOM(Float16)

#undef USINE_INSTANTIATE_RANDOM

}  // namespace usine::kernels_internal::cuda
