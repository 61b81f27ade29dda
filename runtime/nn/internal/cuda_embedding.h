// Embedding lookups (cpu_embedding.h's definitions) on a CUDA device, in f32. The gradient of
// the table is deterministic without atomics: the positions are grouped by id on the host
// (SortIdsForBackward, a stable sort), and one thread per (id, column) adds the id's positions
// in increasing order into the row, which is the cpu's order, so the two agree bit for bit.
// Launch contract: cuda_gelu.h.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_EMBEDDING_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_EMBEDDING_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::nn_internal::cuda {

// out[i] = table[ids[i]] for i < n, and 0 where ids[i] < 0 (an id another rank's slice of a
// vocabulary-parallel table holds). REQUIRES: every id >= 0 is a row of the table.
cudaError_t LaunchEmbeddingForward(const int32_t* ids, int64_t n, const float* table, int64_t dim,
                                   float* out, cudaStream_t stream);

// For each group g < groups: dtable[group_ids[g]] += dout[positions[k]] for k in
// [group_begin[g], group_begin[g + 1]) in that order. The group ids are distinct and the
// positions of a group increasing (see cuda_layers.cc).
cudaError_t LaunchEmbeddingBackward(const int32_t* group_ids, const int32_t* group_begin,
                                    const int32_t* positions, int64_t groups, const float* dout,
                                    int64_t dim, float* dtable, cudaStream_t stream);

// x[b, t] += table[t] for x [batch, seq, dim].
cudaError_t LaunchAddPositions(const float* table, int64_t batch, int64_t seq, int64_t dim,
                               float* x, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_EMBEDDING_H_
