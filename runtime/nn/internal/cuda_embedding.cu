// Embedding kernels behind cuda_embedding.h.
#include "runtime/nn/internal/cuda_embedding.h"
#include "runtime/nn/internal/cuda_grid.cuh"

namespace usine::nn_internal::cuda {
namespace {

__global__ void EmbeddingForwardKernel(const int32_t* ids, int64_t n, const float* table,
                                       int64_t dim, float* out) {
  for (int64_t i = FirstIndex(); i < n * dim; i += GridStride()) {
    const int64_t id = ids[i / dim];
    out[i] = id < 0 ? 0.0f : table[id * dim + i % dim];
  }
}

constexpr int kBackwardThreads = 128;

// Block (g, column tile): group g, columns [tile * kBackwardThreads, ...).
__global__ void EmbeddingBackwardKernel(const int32_t* group_ids, const int32_t* group_begin,
                                        const int32_t* positions, const float* dout, int64_t dim,
                                        float* dtable) {
  const int64_t g = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kBackwardThreads + threadIdx.x;
  if (c >= dim) return;
  float* row = dtable + static_cast<int64_t>(group_ids[g]) * dim;
  float acc = row[c];
  for (int32_t k = group_begin[g]; k < group_begin[g + 1]; ++k) {
    acc = __fadd_rn(acc, dout[static_cast<int64_t>(positions[k]) * dim + c]);
  }
  row[c] = acc;
}

__global__ void AddPositionsKernel(const float* table, int64_t n, int64_t period, float* x) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    x[i] = __fadd_rn(x[i], table[i % period]);
  }
}

}  // namespace

cudaError_t LaunchEmbeddingForward(const int32_t* ids, int64_t n, const float* table, int64_t dim,
                                   float* out, cudaStream_t stream) {
  return LaunchElementwise(EmbeddingForwardKernel, n * dim, stream, ids, n, table, dim, out);
}

cudaError_t LaunchEmbeddingBackward(const int32_t* group_ids, const int32_t* group_begin,
                                    const int32_t* positions, int64_t groups, const float* dout,
                                    int64_t dim, float* dtable, cudaStream_t stream) {
  if (groups <= 0 || dim <= 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(groups),
                  static_cast<unsigned>((dim + kBackwardThreads - 1) / kBackwardThreads));
  EmbeddingBackwardKernel<<<grid, kBackwardThreads, 0, stream>>>(group_ids, group_begin, positions,
                                                                 dout, dim, dtable);
  return cudaGetLastError();
}

cudaError_t LaunchAddPositions(const float* table, int64_t batch, int64_t seq, int64_t dim,
                               float* x, cudaStream_t stream) {
  return LaunchElementwise(AddPositionsKernel, batch * seq * dim, stream, table, batch * seq * dim,
                           seq * dim, x);
}

}  // namespace usine::nn_internal::cuda
