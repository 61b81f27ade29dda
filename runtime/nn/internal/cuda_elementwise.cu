// Column sums behind cuda_elementwise.h.
#include "runtime/nn/internal/cuda_elementwise.h"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

struct Element {
  const float* x;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const { return x[r * cols + c]; }
};

}  // namespace

int64_t ColumnSumsScratch(int64_t rows, int64_t cols) { return ColumnSumChunks(rows) * cols; }

cudaError_t LaunchAccumulateColumnSums(const float* x, int64_t rows, int64_t cols, float* sums,
                                       float* scratch, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  return LaunchAccumulateColumnSumsOf(Element{x, cols}, rows, cols, scratch, sums, stream);
}

}  // namespace usine::nn_internal::cuda
