// LayerNorm over the last dimension (cpu_layer_norm.h's definition) on a CUDA device, in f32.
// Forward: one warp per row, each row's sums along a fixed warp tree. Backward: one pass over
// dy and x, a block per chunk of rows, each row's sums along a fixed block tree, the weight and
// bias gradients as per-chunk column sums added in chunk order. Deterministic.
// Launch contract: cuda_gelu.h. Arrays are row-major [rows, cols] (weight, bias: [cols];
// mean, rstd: [rows]).
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_LAYER_NORM_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_LAYER_NORM_H_

#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"

namespace usine::nn_internal::cuda {

// Writes y, and the mean and rstd of each row for the backward pass. TOut: float, or BFloat16
// (the next product's operand: the f32 values rounded to nearest, ties to even).
template <typename TOut>
cudaError_t LaunchLayerNormForward(const float* x, const float* weight, const float* bias,
                                   int64_t rows, int64_t cols, float eps, TOut* y, float* mean,
                                   float* rstd, cudaStream_t stream);

// Floats of scratch that LaunchLayerNormBackward needs: a function of rows and cols only.
int64_t LayerNormBackwardScratch(int64_t rows, int64_t cols);

// Writes dx (plus `skip`, added last, unless null: the gradient of a residual stream, which
// both this layer and the skip connection read) and *adds* the gradients of weight and bias
// into dweight and dbias. dx may be `skip` (in place). REQUIRES: `scratch` holds
// LayerNormBackwardScratch(rows, cols) floats unused by other work until this finishes (stream
// order).
cudaError_t LaunchLayerNormBackward(const float* dy, const float* x, const float* weight,
                                    const float* mean, const float* rstd, const float* skip,
                                    int64_t rows, int64_t cols, float* dx, float* dweight,
                                    float* dbias, float* scratch, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_LAYER_NORM_H_
