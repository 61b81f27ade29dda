// The CUDA counterpart of cpu_elementwise.h's bias gradient (residual sums use the kernels
// library's Add), optionally with the bf16 copy of the summed array: column sums of a [rows, cols]
// f32 (or bf16) array in a fixed two-pass order (cuda_reduce.cuh), so the same input gives the same
// bits on every run. Launch contract: cuda_gelu.h.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_ELEMENTWISE_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_ELEMENTWISE_H_

#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"

namespace usine::nn_internal::cuda {

// Floats of scratch that LaunchAccumulateColumnSums needs: a function of rows and cols only.
int64_t ColumnSumsScratch(int64_t rows, int64_t cols);

// sums[c] += sum over r of x[r, c] (x f32, or bf16 summed in f32). REQUIRES: `scratch` holds
// ColumnSumsScratch(rows, cols) floats unused by other work until this finishes (stream order).
cudaError_t LaunchAccumulateColumnSums(const float* x, int64_t rows, int64_t cols, float* sums,
                                       float* scratch, cudaStream_t stream);
cudaError_t LaunchAccumulateColumnSums(const BFloat16* x, int64_t rows, int64_t cols, float* sums,
                                       float* scratch, cudaStream_t stream);

// LaunchAccumulateColumnSums (the same bits), also writing x rounded to bf16 (to nearest, ties to
// even) to `rounded` as it reads x: a Linear's output gradient, which its backward pass both
// sums for the bias gradient and multiplies as a bf16 operand, read once instead of twice.
cudaError_t LaunchRoundAndAccumulateColumnSums(const float* x, int64_t rows, int64_t cols,
                                               BFloat16* rounded, float* sums, float* scratch,
                                               cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_ELEMENTWISE_H_
