// GELU (tanh approximation, GPT-2's; cpu_gelu.h) on a CUDA device, elementwise in f32. The
// forward pass may write bf16 (the next product's operand); the backward pass may read its
// input in bf16 (as a product's GELU epilogue saved it, matmul.h) and write bf16 (the operand
// of the products that read the gradient). Every rounding to bf16 is to nearest, ties to even.
// Launch contract of every nn CUDA launcher (cuda_*.h): the work is enqueued on `stream`
// (nullptr: the legacy default stream) of the current device, every pointer is device memory
// of that device, and the result is the enqueueing error (cudaGetLastError() after the
// launches), not an error of the kernels themselves, which surfaces at a later synchronisation.
// n == 0 (rows or cols == 0) enqueues nothing. Only for translation units compiled with the
// CUDA toolkit.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_

#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"

namespace usine::nn_internal::cuda {

// y[i] = gelu(x[i]). TOut: float or BFloat16.
template <typename TOut>
cudaError_t LaunchGeluForward(const float* x, int64_t n, TOut* y, cudaStream_t stream);

// dx[i] = dy[i] * gelu'(x[i]), in f32. TIn and TOut: float or BFloat16; TDy: float, or
// BFloat16 with a BFloat16 TOut (a gradient that a product wrote in bf16).
template <typename TIn, typename TDy, typename TOut>
cudaError_t LaunchGeluBackward(const TIn* x, const TDy* dy, int64_t n, TOut* dx,
                               cudaStream_t stream);

// LaunchGeluBackward over [rows, cols], also adding the column sums of the f32 gradient (before
// any rounding) into sums [cols], in LaunchAccumulateColumnSums's order (cuda_elementwise.h):
// the gradient of a GELU and the bias gradient of the linear layer before it from one pass.
// REQUIRES: `scratch` holds ColumnSumsScratch(rows, cols) floats, unused by other work until
// this finishes (stream order).
template <typename TIn, typename TDy, typename TOut>
cudaError_t LaunchGeluBackwardAndColumnSums(const TIn* x, const TDy* dy, int64_t rows, int64_t cols,
                                            TOut* dx, float* sums, float* scratch,
                                            cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_
