#include "runtime/nn/internal/cpu_cached_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/parallel_for.h"
#include "runtime/kernels/cpu_gemm.h"
#include "runtime/nn/internal/cpu_softmax_rows.h"

namespace usine::nn_internal {
namespace {

// Row t of sequence b of qkv's k and v columns to row past + t of the caches.
template <typename T>
void AppendKeysAndValues(const T* qkv, const CachedAttentionDims& d, T* keys, T* values) {
  const int64_t c = d.heads * d.head_dim;
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t t = 0; t < d.fresh; ++t) {
      const T* row = qkv + (b * d.fresh + t) * 3 * c;
      const int64_t at = (b * d.capacity + d.past + t) * c;
      std::copy(row + c, row + 2 * c, keys + at);
      std::copy(row + 2 * c, row + 3 * c, values + at);
    }
  }
}

}  // namespace

// As CausalAttentionForward: one ParallelFor item per (sequence, head), each writing only its
// head's columns of the output, so the result does not depend on the threads.
template <typename T>
void CachedAttentionForward(const T* qkv, const CachedAttentionDims& d, T* keys, T* values,
                            T* out) {
  AppendKeysAndValues(qkv, d, keys, values);
  const int64_t dim = d.head_dim, c = d.heads * dim, fresh = d.fresh, seen = d.past + d.fresh;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dim)));
  ParallelFor(d.batch * d.heads, /*grain=*/1, [&](int64_t begin, int64_t end) {
    std::vector<T> probs(fresh * seen);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / d.heads, h = bh % d.heads;
      const T* q = qkv + b * fresh * 3 * c + h * dim;
      const T* k = keys + b * d.capacity * c + h * dim;
      const T* v = values + b * d.capacity * c + h * dim;
      // probs <- scale * q k^T over every position seen, then the causal softmax of each row.
      CpuGemmInMatmulPrecision(false, true, fresh, seen, dim, scale, q, 3 * c, k, c, T(0),
                               probs.data(), seen);
      for (int64_t t = 0; t < fresh; ++t) {
        T* row = probs.data() + t * seen;
        const int64_t n = d.past + t + 1;  // Positions [0, past + t].
        const T inv = static_cast<T>(1.0 / ExpShiftedInPlace(row, n, RowMax(row, n)));
        for (int64_t s = 0; s < n; ++s) row[s] *= inv;
        std::fill(row + n, row + seen, T(0));
      }
      // out_h <- probs v.
      CpuGemmInMatmulPrecision(false, false, fresh, dim, seen, T(1), probs.data(), seen, v, c, T(0),
                               out + b * fresh * c + h * dim, c);
    }
  });
}

template void CachedAttentionForward<float>(const float*, const CachedAttentionDims&, float*,
                                            float*, float*);
template void CachedAttentionForward<double>(const double*, const CachedAttentionDims&, double*,
                                             double*, double*);

}  // namespace usine::nn_internal
