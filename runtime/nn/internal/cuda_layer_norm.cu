// LayerNorm kernels behind cuda_layer_norm.h.
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

__global__ void LayerNormBackwardInputKernel(const float* dy, const float* x, const float* weight,
                                             const float* mean, const float* rstd, int64_t rows,
                                             int64_t cols, float* dx) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= rows) return;
  const float* xr = x + row * cols;
  const float* dyr = dy + row * cols;
  const float m = mean[row], s = rstd[row];
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), where g = dy * weight.
  float g_sum = 0.0f, g_xhat_sum = 0.0f;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float g = dyr[c] * weight[c];
    g_sum += g;
    g_xhat_sum += g * ((xr[c] - m) * s);
  }
  const float g_mean = WarpSum(g_sum) / static_cast<float>(cols);
  const float g_xhat_mean = WarpSum(g_xhat_sum) / static_cast<float>(cols);
  float* dxr = dx + row * cols;
  for (int64_t c = lane; c < cols; c += kWarpSize) {
    const float xhat = (xr[c] - m) * s;
    dxr[c] = s * (dyr[c] * weight[c] - g_mean - xhat * g_xhat_mean);
  }
}

// dweight's summand: dy * xhat.
struct DyTimesXhat {
  const float* dy;
  const float* x;
  const float* mean;
  const float* rstd;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const {
    const int64_t i = r * cols + c;
    return dy[i] * ((x[i] - mean[r]) * rstd[r]);
  }
};

// dbias's summand: dy.
struct Element {
  const float* a;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const { return a[r * cols + c]; }
};

}  // namespace

template <typename TOut>
cudaError_t LaunchLayerNormForward(const float* x, const float* weight, const float* bias,
                                   int64_t rows, int64_t cols, float eps, TOut* y, float* mean,
                                   float* rstd, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
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
  return ColumnSumChunks(rows) * cols;
}

cudaError_t LaunchLayerNormBackward(const float* dy, const float* x, const float* weight,
                                    const float* mean, const float* rstd, int64_t rows,
                                    int64_t cols, float* dx, float* dweight, float* dbias,
                                    float* scratch, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  LayerNormBackwardInputKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(dy, x, weight, mean, rstd,
                                                                         rows, cols, dx);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  // The two column sums share `scratch`: the stream runs them one after the other.
  if (const cudaError_t err = LaunchAccumulateColumnSumsOf(DyTimesXhat{dy, x, mean, rstd, cols},
                                                           rows, cols, scratch, dweight, stream);
      err != cudaSuccess) {
    return err;
  }
  return LaunchAccumulateColumnSumsOf(Element{dy, cols}, rows, cols, scratch, dbias, stream);
}

}  // namespace usine::nn_internal::cuda
