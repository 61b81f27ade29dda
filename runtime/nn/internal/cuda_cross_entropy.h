// Softmax cross-entropy over logits [rows, padded_vocab] (cpu_cross_entropy.h's definition) on
// a CUDA device, computed in f32 from f32 or bf16 logits (TIn; bf16 ones are the products'
// output under bf16 products): one block per row; each row's max and sum of exponentials in one
// pass over it (the online softmax: each thread rescales its sum as its max grows), combined
// along fixed block trees, over the columns [0, vocab) only (the padding is never predicted);
// the backward pass writes the gradient over the logits in place, padding 0; or the forward
// pass writes the gradient at once, in the logits' dtype (in place or not) or, for f32 logits,
// bf16 (a product's operand), which saves the backward pass's read of the logits. Rows of an
// even width are read and written two elements an access. Launch contract: cuda_gelu.h.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_CROSS_ENTROPY_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_CROSS_ENTROPY_H_

#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"

namespace usine::nn_internal::cuda {

// Writes each row's log-sum-exp to lse [rows] and its loss, lse - logits[r, targets[r]], to
// losses [rows]. REQUIRES: 0 <= targets[r] < vocab <= padded_vocab. TIn (here and below):
// float or BFloat16.
template <typename TIn>
cudaError_t LaunchCrossEntropyForward(const TIn* logits, const int32_t* targets, int64_t rows,
                                      int64_t vocab, int64_t padded_vocab, float* lse,
                                      float* losses, cudaStream_t stream);

// In place: logits[r] <- scale * (softmax(logits[r]) - onehot(targets[r])), padding <- 0.
template <typename T>
cudaError_t LaunchCrossEntropyBackward(const int32_t* targets, const float* lse, int64_t rows,
                                       int64_t vocab, int64_t padded_vocab, float scale, T* logits,
                                       cudaStream_t stream);

// LaunchCrossEntropyForward's losses (the same bits) and LaunchCrossEntropyBackward's gradient
// from one kernel: gradient [rows, padded_vocab] <- scale * (softmax(logits[r]) -
// onehot(targets[r])), padding 0, computed in f32 as e^(x - max) * (scale / sum) (closer than
// the backward kernel's e^(x - lse), whose lse is rounded), bf16 ones then rounded to nearest,
// ties to even. `gradient` may be `logits` (in place). No lse: nothing needs it. TOut: TIn, or
// BFloat16 for float logits. bf16 logits and gradient whose rows CrossEntropyRowCached takes are
// read from global memory once: each row is copied into shared memory and read there twice.
template <typename TIn, typename TOut>
cudaError_t LaunchCrossEntropyForwardWithGradient(const TIn* logits, const int32_t* targets,
                                                  int64_t rows, int64_t vocab, int64_t padded_vocab,
                                                  float scale, float* losses, TOut* gradient,
                                                  cudaStream_t stream);

// Whether LaunchCrossEntropyForwardWithGradient keeps a row of bf16 logits in shared memory:
// padded_vocab a multiple of 8 and at most 112 KB of bf16, logits and gradient 16-byte aligned
// (on a device whose blocks may have 112 KB of shared memory: Hopper's and the A100's).
bool CrossEntropyRowCached(int64_t padded_vocab, const void* logits, const void* gradient);

// The vocabulary-parallel forms (cpu_vocab_parallel.h's Slice*), one block per row of this
// rank's logits [rows, count], whose columns [0, valid) are the classes [begin, begin + valid)
// and the rest padding; the same block trees as above over [0, valid).
// max[r] <- row r's max over [0, valid) (-inf when valid is 0).
template <typename TIn>
cudaError_t LaunchSliceRowMax(const TIn* logits, int64_t rows, int64_t count, int64_t valid,
                              float* max, cudaStream_t stream);
// sums[r] <- the sum over [0, valid) of e^(logit - max[r]) (max: the group's); sums[rows + r]
// <- the logit of class targets[r] when this slice holds it, else 0.
template <typename TIn>
cudaError_t LaunchSliceSumExpAndTarget(const TIn* logits, const int32_t* targets, int64_t rows,
                                       int64_t begin, int64_t count, int64_t valid,
                                       const float* max, float* sums, cudaStream_t stream);
// gradient[r] <- scale * (e^(logit - lse[r]) - onehot(targets[r])) over [0, valid), 0 over the
// padding, from the row's log-sum-exp over the whole vocabulary. TOut as above (gradient may be
// logits, in place).
template <typename TIn, typename TOut>
cudaError_t LaunchSliceCrossEntropyGradient(const TIn* logits, const int32_t* targets,
                                            const float* lse, int64_t rows, int64_t begin,
                                            int64_t count, int64_t valid, float scale,
                                            TOut* gradient, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_CROSS_ENTROPY_H_
