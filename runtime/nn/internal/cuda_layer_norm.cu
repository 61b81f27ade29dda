// LayerNorm kernels behind cuda_layer_norm.h.
#include <algorithm>
#include <cstdint>

#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_layer_norm.h"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // One warp per row.
constexpr int kThreads = kRowsPerBlock * kWarpSize;

unsigned RowBlocks(int64_t rows) {
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

template <typename TOut>
__global__ void LayerNormForwardKernel(const float* x, const float* weight, const float* bias,
                                       int64_t rows, int64_t cols, float eps, TOut* y, float* mean,
                                       float* rstd) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= rows) return;  // The whole warp leaves together: no block-wide barrier below.
  const float* xr = x + row * cols;
  float sum = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize) sum += xr[c];
  const float m = WarpSum(sum) / static_cast<float>(cols);
  float squares = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float d = xr[c] - m;
    squares += d * d;
  }
  const float s = 1.0f / sqrtf(WarpSum(squares) / static_cast<float>(cols) + eps);
  TOut* yr = y + row * cols;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    yr[c] = kernels_internal::FromFloat<TOut>((xr[c] - m) * s * weight[c] + bias[c]);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// The backward pass's blocks: each takes the rows [b * chunk_rows, ...) of chunk b, one row at
// a time with every thread of the block, thread t holding the columns c = t, t + kBackwardThreads,
// ... (here and in the column sums below).
constexpr int kBackwardThreads = 256;
constexpr int64_t kBackwardChunkRows = 16;
// The scratch of the row sums (BlockSums), static shared memory.
constexpr int kRowSumScratch = 2 * kBackwardThreads / kWarpSize;
// The column sums (2 * cols floats) live in dynamic shared memory while it and the scratch fit
// the 48 KiB a launch gets without opting in to more, otherwise in their global partials.
constexpr int64_t kMaxSharedSumBytes = 48 * 1024 - kRowSumScratch * sizeof(float);

int64_t BackwardChunks(int64_t rows) {
  return std::clamp<int64_t>((rows + kBackwardChunkRows - 1) / kBackwardChunkRows, 1,
                             kMaxColumnChunks);
}

// One pass over dy and x (each row read from memory once, then from the cache): per row, the
// sums of g = dy * weight and g * xhat over the block (one fixed tree), then
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) [+ skip, added last],
// while each thread adds dy * xhat and dy of its columns, row after row, into its column sums
// of the chunk: the chunk's partials of dweight and dbias, partials[b * cols + c] and
// partials[(chunks + b) * cols + c]. kSharedSums keeps those sums in shared memory until the
// chunk is done. No thread reads another's sums: no barrier for them.
template <bool kSharedSums>
__global__ void LayerNormBackwardKernel(const float* dy, const float* x, const float* weight,
                                        const float* mean, const float* rstd, const float* skip,
                                        int64_t rows, int64_t cols, int64_t chunk_rows, float* dx,
                                        float* partials) {
  extern __shared__ float shared_sums[];  // [2, cols] with kSharedSums.
  __shared__ float scratch[kRowSumScratch];
  const int64_t chunk = blockIdx.x, chunks = gridDim.x;
  float* weight_sums = kSharedSums ? shared_sums : partials + chunk * cols;
  float* bias_sums = kSharedSums ? shared_sums + cols : partials + (chunks + chunk) * cols;
  const int64_t t = threadIdx.x;
  for (int64_t c = t; c < cols; c += kBackwardThreads) {
    weight_sums[c] = 0.0f;
    bias_sums[c] = 0.0f;
  }
  const int64_t first = chunk * chunk_rows;
  const int64_t end = first + chunk_rows < rows ? first + chunk_rows : rows;
  for (int64_t row = first; row < end; ++row) {
    const float* xr = x + row * cols;
    const float* dyr = dy + row * cols;
    const float m = mean[row], s = rstd[row];
    float g_sum = 0.0f, g_xhat_sum = 0.0f;
    for (int64_t c = t; c < cols; c += kBackwardThreads) {
      const float xhat = (xr[c] - m) * s;
      const float g = dyr[c] * weight[c];
      g_sum += g;
      g_xhat_sum += g * xhat;
      weight_sums[c] = __fadd_rn(weight_sums[c], dyr[c] * xhat);
      bias_sums[c] = __fadd_rn(bias_sums[c], dyr[c]);
    }
    BlockSums<kBackwardThreads>(g_sum, g_xhat_sum, scratch);
    const float g_mean = g_sum / static_cast<float>(cols);
    const float g_xhat_mean = g_xhat_sum / static_cast<float>(cols);
    float* dxr = dx + row * cols;
    for (int64_t c = t; c < cols; c += kBackwardThreads) {
      const float xhat = (xr[c] - m) * s;
      const float d = s * (dyr[c] * weight[c] - g_mean - xhat * g_xhat_mean);
      dxr[c] = skip == nullptr ? d : __fadd_rn(skip[row * cols + c], d);
    }
  }
  if constexpr (kSharedSums) {
    for (int64_t c = t; c < cols; c += kBackwardThreads) {
      partials[chunk * cols + c] = weight_sums[c];
      partials[(chunks + chunk) * cols + c] = bias_sums[c];
    }
  }
}

}  // namespace

template <typename TOut>
cudaError_t LaunchLayerNormForward(const float* x, const float* weight, const float* bias,
                                   int64_t rows, int64_t cols, float eps, TOut* y, float* mean,
                                   float* rstd, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  LayerNormForwardKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(x, weight, bias, rows, cols, eps,
                                                                   y, mean, rstd);
  return cudaGetLastError();
}

template cudaError_t LaunchLayerNormForward<float>(const float*, const float*, const float*,
                                                   int64_t, int64_t, float, float*, float*, float*,
                                                   cudaStream_t);
template cudaError_t LaunchLayerNormForward<BFloat16>(const float*, const float*, const float*,
                                                      int64_t, int64_t, float, BFloat16*, float*,
                                                      float*, cudaStream_t);

int64_t LayerNormBackwardScratch(int64_t rows, int64_t cols) {
  return 2 * BackwardChunks(rows) * cols;
}

cudaError_t LaunchLayerNormBackward(const float* dy, const float* x, const float* weight,
                                    const float* mean, const float* rstd, const float* skip,
                                    int64_t rows, int64_t cols, float* dx, float* dweight,
                                    float* dbias, float* scratch, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  const int64_t chunks = BackwardChunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  const int64_t shared_bytes = 2 * cols * static_cast<int64_t>(sizeof(float));
  const auto grid = static_cast<unsigned>(chunks);
  if (shared_bytes <= kMaxSharedSumBytes) {
    LayerNormBackwardKernel<true><<<grid, kBackwardThreads, shared_bytes, stream>>>(
        dy, x, weight, mean, rstd, skip, rows, cols, chunk_rows, dx, scratch);
  } else {
    LayerNormBackwardKernel<false><<<grid, kBackwardThreads, 0, stream>>>(
        dy, x, weight, mean, rstd, skip, rows, cols, chunk_rows, dx, scratch);
  }
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  // Each chunk's partials added into the gradients in chunk order.
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>((cols + kThreads - 1) / kThreads);
  AddColumnPartialsKernel<<<blocks, kThreads, 0, stream>>>(scratch, chunks, cols, dweight);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  AddColumnPartialsKernel<<<blocks, kThreads, 0, stream>>>(scratch + chunks * cols, chunks, cols,
                                                           dbias);
  return cudaGetLastError();
}

}  // namespace usine::nn_internal::cuda
