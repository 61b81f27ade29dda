// Embedding lookups on the cpu: rows of a table [rows, dim] gathered by token id, and learned
// positions (rows 0..T-1 added to every sequence). T is float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_EMBEDDING_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_EMBEDDING_H_

#include <cstdint>

namespace usine::nn_internal {

// out[i] = table[ids[i]] for i < n. REQUIRES: every id is a row of the table.
template <typename T>
void EmbeddingForward(const int32_t* ids, int64_t n, const T* table, int64_t dim, T* out);

// dtable[ids[i]] += dout[i], in order of i (deterministic).
template <typename T>
void EmbeddingBackward(const int32_t* ids, int64_t n, const T* dout, int64_t dim, T* dtable);

// x[b, t] += table[t] for x [batch, seq, dim].
template <typename T>
void AddPositions(const T* table, int64_t batch, int64_t seq, int64_t dim, T* x);

// dtable[t] += sum over b of dx[b, t].
template <typename T>
void AddPositionsBackward(const T* dx, int64_t batch, int64_t seq, int64_t dim, T* dtable);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_EMBEDDING_H_
