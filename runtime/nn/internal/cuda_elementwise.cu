// Column sums behind cuda_elementwise.h.
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_elementwise.h"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

template <typename T>
struct Element {
  const T* x;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const {
    return kernels_internal::ToFloat(x[r * cols + c]);
  }
};

template <typename T>
cudaError_t AccumulateColumnSums(const T* x, int64_t rows, int64_t cols, float* sums,
                                 float* scratch, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  return LaunchAccumulateColumnSumsOf(Element<T>{x, cols}, rows, cols, scratch, sums, stream);
}

// Element, writing each element it reads, rounded to bf16, to `rounded`: the column sums' first
// pass reads every element exactly once.
struct RoundedElement {
  const float* x;
  int64_t cols;
  BFloat16* rounded;
  __device__ float operator()(int64_t r, int64_t c) const {
    const float v = x[r * cols + c];
    rounded[r * cols + c] = BFloat16::FromFloat(v);
    return v;
  }
};

}  // namespace

int64_t ColumnSumsScratch(int64_t rows, int64_t cols) { return ColumnSumChunks(rows) * cols; }

cudaError_t LaunchAccumulateColumnSums(const float* x, int64_t rows, int64_t cols, float* sums,
                                       float* scratch, cudaStream_t stream) {
  return AccumulateColumnSums(x, rows, cols, sums, scratch, stream);
}

cudaError_t LaunchAccumulateColumnSums(const BFloat16* x, int64_t rows, int64_t cols, float* sums,
                                       float* scratch, cudaStream_t stream) {
  return AccumulateColumnSums(x, rows, cols, sums, scratch, stream);
}

cudaError_t LaunchRoundAndAccumulateColumnSums(const float* x, int64_t rows, int64_t cols,
                                               BFloat16* rounded, float* sums, float* scratch,
                                               cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  return LaunchAccumulateColumnSumsOf(RoundedElement{x, cols, rounded}, rows, cols, scratch, sums,
                                      stream);
}

}  // namespace usine::nn_internal::cuda
