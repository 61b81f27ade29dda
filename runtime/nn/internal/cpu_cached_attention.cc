#include "runtime/nn/internal/cpu_cached_attention.h"

#include <algorithm>
#include <vector>

#include "runtime/core/parallel_for.h"
#include "runtime/nn/internal/cpu_attention.h"

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
  const int64_t dim = d.head_dim, c = d.heads * dim, fresh = d.fresh;
  ParallelFor(d.batch * d.heads, /*grain=*/1, [&](int64_t begin, int64_t end) {
    std::vector<T> probs(fresh * (d.past + fresh));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / d.heads, h = bh % d.heads;
      const int64_t head = b * d.capacity * c + h * dim;  // Of the caches.
      AttendCausally(qkv + b * fresh * 3 * c + h * dim, 3 * c, keys + head, values + head, c, fresh,
                     d.past, dim, probs.data(), out + b * fresh * c + h * dim, c);
    }
  });
}

template void CachedAttentionForward<float>(const float*, const CachedAttentionDims&, float*,
                                            float*, float*);
template void CachedAttentionForward<double>(const double*, const CachedAttentionDims&, double*,
                                             double*, double*);

}  // namespace usine::nn_internal
