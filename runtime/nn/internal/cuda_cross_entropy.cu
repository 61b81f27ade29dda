// Cross-entropy kernels behind cuda_cross_entropy.h.
#include "runtime/nn/internal/cuda_cross_entropy.h"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void CrossEntropyForwardKernel(const float* logits, const int32_t* targets,
                                          int64_t vocab, int64_t padded_vocab, float* lse,
                                          float* losses) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * padded_vocab;
  float max = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) max = fmaxf(max, row[j]);
  max = BlockReduce<kThreads, /*kMax=*/true>(max, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) sum += expf(row[j] - max);
  sum = BlockReduce<kThreads>(sum, scratch);
  if (threadIdx.x == 0) {
    const float log_sum_exp = max + logf(sum);
    lse[r] = log_sum_exp;
    losses[r] = log_sum_exp - row[targets[r]];
  }
}

__global__ void CrossEntropyBackwardKernel(const int32_t* targets, const float* lse, int64_t vocab,
                                           int64_t padded_vocab, float scale, float* logits) {
  const int64_t r = blockIdx.x;
  float* row = logits + r * padded_vocab;
  const float log_sum_exp = lse[r];
  const int64_t target = targets[r];
  for (int64_t j = threadIdx.x; j < padded_vocab; j += kThreads) {
    if (j < vocab) {
      const float p = expf(row[j] - log_sum_exp);
      row[j] = scale * (p - (j == target ? 1.0f : 0.0f));
    } else {
      row[j] = 0.0f;
    }
  }
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

}  // namespace usine::nn_internal::cuda
