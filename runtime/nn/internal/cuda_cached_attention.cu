// The decoding step's kernels behind cuda_cached_attention.h.
#include <cmath>

#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_cached_attention.h"
#include "runtime/nn/internal/cuda_grid.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

namespace ki = kernels_internal;

constexpr int kWarpsPerBlock = 4;
constexpr int kPerLane = kCachedAttentionMaxHeadDim / kWarpSize;  // A row's elements per lane.

// Element i of the new positions' keys and values (i over [B, Tn, C]) to the caches.
template <typename TQkv>
__global__ void AppendKeysAndValuesKernel(const TQkv* qkv, CachedAttentionDims d, int64_t n,
                                          float* keys, float* values) {
  const int64_t c = d.heads * d.head_dim;
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const int64_t j = i % c, row = i / c;  // row = b * fresh + t.
    const int64_t b = row / d.fresh, t = row % d.fresh;
    const int64_t at = (b * d.capacity + d.past + t) * c + j;
    keys[at] = ki::ToFloat(qkv[row * 3 * c + c + j]);
    values[at] = ki::ToFloat(qkv[row * 3 * c + 2 * c + j]);
  }
}

// One warp per (b, t, h): new position t of sequence b, at absolute position past + t, attends
// to cache rows [0, past + t] of head h. Lane l holds elements l, l + 32, ... of the query and
// of the output's accumulator; each key's score is a warp sum (the same bits in every lane),
// and the softmax runs online: the running max, the running sum of e^(score - max), and the
// accumulator rescaled whenever the max grows.
template <typename TQkv>
__global__ void AttendKernel(const TQkv* qkv, CachedAttentionDims d, float scale, const float* keys,
                             const float* values, float* out) {
  const int64_t rows = d.batch * d.fresh * d.heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= rows) return;
  const int64_t h = row % d.heads, bt = row / d.heads;  // bt = b * fresh + t.
  const int64_t b = bt / d.fresh, t = bt % d.fresh;
  const int64_t dim = d.head_dim, c = d.heads * dim;
  const TQkv* q_row = qkv + bt * 3 * c + h * dim;
  float q[kPerLane], acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t j = lane + i * kWarpSize;
    q[i] = j < dim ? ki::ToFloat(q_row[j]) : 0.0f;
    acc[i] = 0.0f;
  }
  const float* k_head = keys + b * d.capacity * c + h * dim;
  const float* v_head = values + b * d.capacity * c + h * dim;
  float max = -INFINITY, sum = 0.0f;
  for (int64_t s = 0; s <= d.past + t; ++s) {
    const float* k = k_head + s * c;
    float partial = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t j = lane + i * kWarpSize;
      if (j < dim) partial += q[i] * k[j];
    }
    const float score = WarpSum(partial) * scale;
    const float new_max = fmaxf(max, score);
    const float rescale = expf(max - new_max);  // 0 at the first key, whose max is -inf.
    const float p = expf(score - new_max);
    sum = sum * rescale + p;
    const float* v = v_head + s * c;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t j = lane + i * kWarpSize;
      if (j < dim) acc[i] = acc[i] * rescale + p * v[j];
    }
    max = new_max;
  }
  float* o = out + bt * c + h * dim;
  const float inv = 1.0f / sum;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t j = lane + i * kWarpSize;
    if (j < dim) o[j] = acc[i] * inv;
  }
}

}  // namespace

template <typename TQkv>
cudaError_t LaunchCachedAttentionForward(const TQkv* qkv, const CachedAttentionDims& d, float* keys,
                                         float* values, float* out, cudaStream_t stream) {
  if (d.head_dim < 1 || d.head_dim > kCachedAttentionMaxHeadDim || d.past < 0 ||
      d.past + d.fresh > d.capacity) {
    return cudaErrorInvalidValue;
  }
  const int64_t c = d.heads * d.head_dim;
  const cudaError_t appended =
      LaunchElementwise(AppendKeysAndValuesKernel<TQkv>, d.batch * d.fresh * c, stream, qkv, d,
                        d.batch * d.fresh * c, keys, values);
  if (appended != cudaSuccess) return appended;
  const int64_t rows = d.batch * d.fresh * d.heads;
  if (rows <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
  AttendKernel<TQkv>
      <<<blocks, kWarpsPerBlock * kWarpSize, 0, stream>>>(qkv, d, scale, keys, values, out);
  return cudaGetLastError();
}

template cudaError_t LaunchCachedAttentionForward<float>(const float*, const CachedAttentionDims&,
                                                         float*, float*, float*, cudaStream_t);
template cudaError_t LaunchCachedAttentionForward<BFloat16>(const BFloat16*,
                                                            const CachedAttentionDims&, float*,
                                                            float*, float*, cudaStream_t);

}  // namespace usine::nn_internal::cuda
