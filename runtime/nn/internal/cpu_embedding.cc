#include "runtime/nn/internal/cpu_embedding.h"

#include <algorithm>

namespace usine::nn_internal {

template <typename T>
void EmbeddingForward(const int32_t* ids, int64_t n, const T* table, int64_t dim, T* out) {
  for (int64_t i = 0; i < n; ++i) std::copy_n(table + ids[i] * dim, dim, out + i * dim);
}

template <typename T>
void EmbeddingBackward(const int32_t* ids, int64_t n, const T* dout, int64_t dim, T* dtable) {
  for (int64_t i = 0; i < n; ++i) {
    T* row = dtable + ids[i] * dim;
    const T* g = dout + i * dim;
    for (int64_t j = 0; j < dim; ++j) row[j] += g[j];
  }
}

template <typename T>
void AddPositions(const T* table, int64_t batch, int64_t seq, int64_t dim, T* x) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < seq * dim; ++i) x[b * seq * dim + i] += table[i];
  }
}

template <typename T>
void AddPositionsBackward(const T* dx, int64_t batch, int64_t seq, int64_t dim, T* dtable) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < seq * dim; ++i) dtable[i] += dx[b * seq * dim + i];
  }
}

#define USINE_INSTANTIATE(T)                                                          \
  template void EmbeddingForward<T>(const int32_t*, int64_t, const T*, int64_t, T*);  \
  template void EmbeddingBackward<T>(const int32_t*, int64_t, const T*, int64_t, T*); \
  template void AddPositions<T>(const T*, int64_t, int64_t, int64_t, T*);             \
  template void AddPositionsBackward<T>(const T*, int64_t, int64_t, int64_t, T*);
USINE_INSTANTIATE(float)
USINE_INSTANTIATE(double)
#undef USINE_INSTANTIATE

}  // namespace usine::nn_internal
