// Head layout and causal softmax kernels behind cuda_attention.h.
#include "runtime/nn/internal/cuda_attention.h"
#include "runtime/nn/internal/cuda_grid.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

// The index in rows [B, T, parts, H, D] of element i of heads [parts, B, H, T, D].
__device__ int64_t RowIndex(int64_t i, const HeadLayout& l) {
  const int64_t d = i % l.head_dim;
  int64_t rest = i / l.head_dim;
  const int64_t t = rest % l.seq;
  rest /= l.seq;
  const int64_t h = rest % l.heads;
  rest /= l.heads;
  const int64_t b = rest % l.batch;
  const int64_t p = rest / l.batch;
  return (((b * l.seq + t) * l.parts + p) * l.heads + h) * l.head_dim + d;
}

__global__ void SplitHeadsKernel(const float* rows, HeadLayout l, int64_t n, float* heads) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) heads[i] = rows[RowIndex(i, l)];
}

__global__ void MergeHeadsKernel(const float* heads, HeadLayout l, int64_t n, float* rows) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) rows[RowIndex(i, l)] = heads[i];
}

constexpr int kRowsPerBlock = 8;  // One warp per row of scores.
constexpr int kThreads = kRowsPerBlock * kWarpSize;

__global__ void CausalSoftmaxForwardKernel(float* scores, int64_t total_rows, int64_t seq) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= total_rows) return;
  const int64_t t = row % seq;  // Query position: columns [0, t] are visible.
  float* p = scores + row * seq;
  float max = -INFINITY;
  for (int64_t s = lane; s <= t; s += kWarpSize) max = fmaxf(max, p[s]);
  max = WarpMax(max);
  float sum = 0.0f;
  for (int64_t s = lane; s <= t; s += kWarpSize) {
    const float e = expf(p[s] - max);
    p[s] = e;
    sum += e;
  }
  const float inv = 1.0f / WarpSum(sum);
  for (int64_t s = lane; s < seq; s += kWarpSize) p[s] = s <= t ? p[s] * inv : 0.0f;
}

__global__ void CausalSoftmaxBackwardKernel(const float* probs, int64_t total_rows, int64_t seq,
                                            float scale, float* dprobs) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= total_rows) return;
  const int64_t t = row % seq;
  const float* p = probs + row * seq;
  float* dp = dprobs + row * seq;
  float p_dp = 0.0f;
  for (int64_t s = lane; s <= t; s += kWarpSize) p_dp += p[s] * dp[s];
  p_dp = WarpSum(p_dp);
  for (int64_t s = lane; s < seq; s += kWarpSize) {
    dp[s] = s <= t ? p[s] * (dp[s] - p_dp) * scale : 0.0f;
  }
}

unsigned RowBlocks(int64_t rows) {
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

cudaError_t LaunchSplitHeads(const float* rows, const HeadLayout& l, float* heads,
                             cudaStream_t stream) {
  const int64_t n = l.parts * l.batch * l.heads * l.seq * l.head_dim;
  return LaunchElementwise(SplitHeadsKernel, n, stream, rows, l, n, heads);
}

cudaError_t LaunchMergeHeads(const float* heads, const HeadLayout& l, float* rows,
                             cudaStream_t stream) {
  const int64_t n = l.parts * l.batch * l.heads * l.seq * l.head_dim;
  return LaunchElementwise(MergeHeadsKernel, n, stream, heads, l, n, rows);
}

cudaError_t LaunchCausalSoftmaxForward(float* scores, int64_t count, int64_t seq,
                                       cudaStream_t stream) {
  if (count <= 0 || seq <= 0) return cudaSuccess;
  CausalSoftmaxForwardKernel<<<RowBlocks(count * seq), kThreads, 0, stream>>>(scores, count * seq,
                                                                              seq);
  return cudaGetLastError();
}

cudaError_t LaunchCausalSoftmaxBackward(const float* probs, int64_t count, int64_t seq, float scale,
                                        float* dprobs, cudaStream_t stream) {
  if (count <= 0 || seq <= 0) return cudaSuccess;
  CausalSoftmaxBackwardKernel<<<RowBlocks(count * seq), kThreads, 0, stream>>>(probs, count * seq,
                                                                               seq, scale, dprobs);
  return cudaGetLastError();
}

}  // namespace usine::nn_internal::cuda
