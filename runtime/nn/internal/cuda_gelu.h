// GELU (tanh approximation, GPT-2's; cpu_gelu.h) on a CUDA device, elementwise in f32; the
// forward pass may write bf16 (the next product's operand), rounded to nearest, ties to even.
// Launch contract of every nn CUDA launcher (cuda_*.h): the work is enqueued on `stream`
// (nullptr: the legacy default stream) of the current device, every pointer is device memory
// of that device, and the result is the enqueueing error (cudaGetLastError() after the
// launches), not an error of the kernels themselves, which surfaces at a later synchronisation.
// n == 0 enqueues nothing. Only for translation units compiled with the CUDA toolkit.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_

#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"

namespace usine::nn_internal::cuda {

// y[i] = gelu(x[i]). TOut: float or BFloat16.
template <typename TOut>
cudaError_t LaunchGeluForward(const float* x, int64_t n, TOut* y, cudaStream_t stream);

// dx[i] = dy[i] * gelu'(x[i]).
cudaError_t LaunchGeluBackward(const float* x, const float* dy, int64_t n, float* dx,
                               cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_GELU_H_
