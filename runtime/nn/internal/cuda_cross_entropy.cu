// Cross-entropy kernels behind cuda_cross_entropy.h.
#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_cross_entropy.h"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

constexpr int kThreads = 256;

// A row's softmax statistics over [0, vocab): its max and the sum of e^(x - max).
struct RowStats {
  float max;
  float sum;
  __device__ float LogSumExp() const { return max + logf(sum); }
};

// The max of row[0, n) (-inf for n = 0), and the sum of e^(row[j] - max) over it, from the
// block's threads together (block-wide collectives: every thread calls them and gets the
// value).
__device__ float RowMax(const float* row, int64_t n, float* scratch) {
  float max = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) max = fmaxf(max, row[j]);
  return BlockReduce<kThreads, /*kMax=*/true>(max, scratch);
}
__device__ float RowSumExp(const float* row, int64_t n, float max, float* scratch) {
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) sum += expf(row[j] - max);
  return BlockReduce<kThreads>(sum, scratch);
}

// Row r's statistics over [0, vocab).
__device__ RowStats RowStatsOf(const float* row, int64_t vocab, float* scratch) {
  const float max = RowMax(row, vocab, scratch);
  return {max, RowSumExp(row, vocab, max, scratch)};
}

// gradient[j] <- e^(row[j] - shift) * factor - (j == target ? scale : 0) over [0, vocab), 0
// over the padding: scale * (softmax - onehot) with shift = max and factor = scale / sum, or
// shift = log-sum-exp and factor = scale. `gradient` may be `row` (f32 in place): each element
// is read, then written, by one thread.
template <typename TOut>
__device__ void WriteRowGradient(const float* row, int64_t target, float shift, float factor,
                                 int64_t vocab, int64_t padded_vocab, float scale, TOut* gradient) {
  for (int64_t j = threadIdx.x; j < padded_vocab; j += kThreads) {
    float g = 0.0f;
    if (j < vocab) g = expf(row[j] - shift) * factor - (j == target ? scale : 0.0f);
    gradient[j] = kernels_internal::FromFloat<TOut>(g);
  }
}

__global__ void CrossEntropyForwardKernel(const float* logits, const int32_t* targets,
                                          int64_t vocab, int64_t padded_vocab, float* lse,
                                          float* losses) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * padded_vocab;
  const float log_sum_exp = RowStatsOf(row, vocab, scratch).LogSumExp();
  if (threadIdx.x == 0) {
    lse[r] = log_sum_exp;
    losses[r] = log_sum_exp - row[targets[r]];
  }
}

__global__ void CrossEntropyBackwardKernel(const int32_t* targets, const float* lse, int64_t vocab,
                                           int64_t padded_vocab, float scale, float* logits) {
  const int64_t r = blockIdx.x;
  float* row = logits + r * padded_vocab;
  WriteRowGradient(row, targets[r], lse[r], scale, vocab, padded_vocab, scale, row);
}

template <typename TOut>
__global__ void CrossEntropyForwardWithGradientKernel(const float* logits, const int32_t* targets,
                                                      int64_t vocab, int64_t padded_vocab,
                                                      float scale, float* losses, TOut* gradient) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * padded_vocab;
  const int64_t target = targets[r];
  // Read before the barriers in RowStatsOf: after them, an in-place gradient overwrites it.
  const float target_logit = threadIdx.x == 0 ? row[target] : 0.0f;
  const RowStats stats = RowStatsOf(row, vocab, scratch);
  if (threadIdx.x == 0) losses[r] = stats.LogSumExp() - target_logit;
  // The exponentials relative to the max, scaled by 1 / sum: no log-sum-exp rounded to f32 in
  // between.
  WriteRowGradient(row, target, stats.max, scale / stats.sum, vocab, padded_vocab, scale,
                   gradient + r * padded_vocab);
}

// The vocabulary-parallel forms: row r of this rank's logits [rows, count], whose columns
// [0, valid) are the classes [begin, begin + valid).
__global__ void SliceRowMaxKernel(const float* logits, int64_t count, int64_t valid, float* max) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float row_max = RowMax(logits + r * count, valid, scratch);
  if (threadIdx.x == 0) max[r] = row_max;
}

__global__ void SliceSumExpAndTargetKernel(const float* logits, const int32_t* targets,
                                           int64_t rows, int64_t begin, int64_t count,
                                           int64_t valid, const float* max, float* sums) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * count;
  const float sum = RowSumExp(row, valid, max[r], scratch);
  if (threadIdx.x == 0) {
    const int64_t target = targets[r] - begin;
    sums[r] = sum;
    sums[rows + r] = target >= 0 && target < valid ? row[target] : 0.0f;
  }
}

template <typename TOut>
__global__ void SliceCrossEntropyGradientKernel(const float* logits, const int32_t* targets,
                                                const float* lse, int64_t begin, int64_t count,
                                                int64_t valid, float scale, TOut* gradient) {
  const int64_t r = blockIdx.x;
  // A target outside the slice (negative or >= valid) matches no column.
  WriteRowGradient(logits + r * count, targets[r] - begin, lse[r], scale, valid, count, scale,
                   gradient + r * count);
}

}  // namespace

cudaError_t LaunchCrossEntropyForward(const float* logits, const int32_t* targets, int64_t rows,
                                      int64_t vocab, int64_t padded_vocab, float* lse,
                                      float* losses, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  CrossEntropyForwardKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, vocab, padded_vocab, lse, losses);
  return cudaGetLastError();
}

cudaError_t LaunchCrossEntropyBackward(const int32_t* targets, const float* lse, int64_t rows,
                                       int64_t vocab, int64_t padded_vocab, float scale,
                                       float* logits, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  CrossEntropyBackwardKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      targets, lse, vocab, padded_vocab, scale, logits);
  return cudaGetLastError();
}

template <typename TOut>
cudaError_t LaunchCrossEntropyForwardWithGradient(const float* logits, const int32_t* targets,
                                                  int64_t rows, int64_t vocab, int64_t padded_vocab,
                                                  float scale, float* losses, TOut* gradient,
                                                  cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  CrossEntropyForwardWithGradientKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, vocab, padded_vocab, scale, losses, gradient);
  return cudaGetLastError();
}

cudaError_t LaunchSliceRowMax(const float* logits, int64_t rows, int64_t count, int64_t valid,
                              float* max, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  SliceRowMaxKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, count, valid,
                                                                          max);
  return cudaGetLastError();
}

cudaError_t LaunchSliceSumExpAndTarget(const float* logits, const int32_t* targets, int64_t rows,
                                       int64_t begin, int64_t count, int64_t valid,
                                       const float* max, float* sums, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  SliceSumExpAndTargetKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, rows, begin, count, valid, max, sums);
  return cudaGetLastError();
}

template <typename TOut>
cudaError_t LaunchSliceCrossEntropyGradient(const float* logits, const int32_t* targets,
                                            const float* lse, int64_t rows, int64_t begin,
                                            int64_t count, int64_t valid, float scale,
                                            TOut* gradient, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  SliceCrossEntropyGradientKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, lse, begin, count, valid, scale, gradient);
  return cudaGetLastError();
}

template cudaError_t LaunchSliceCrossEntropyGradient<float>(const float*, const int32_t*,
                                                            const float*, int64_t, int64_t, int64_t,
                                                            int64_t, float, float*, cudaStream_t);
template cudaError_t LaunchSliceCrossEntropyGradient<BFloat16>(const float*, const int32_t*,
                                                               const float*, int64_t, int64_t,
                                                               int64_t, int64_t, float, BFloat16*,
                                                               cudaStream_t);
template cudaError_t LaunchCrossEntropyForwardWithGradient<float>(const float*, const int32_t*,
                                                                  int64_t, int64_t, int64_t, float,
                                                                  float*, float*, cudaStream_t);
template cudaError_t LaunchCrossEntropyForwardWithGradient<BFloat16>(const float*, const int32_t*,
                                                                     int64_t, int64_t, int64_t,
                                                                     float, float*, BFloat16*,
                                                                     cudaStream_t);

}  // namespace usine::nn_internal::cuda
