#include "runtime/nn/internal/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/parallel_for.h"
#include "runtime/kernels/cpu_gemm.h"
#include "runtime/nn/internal/cpu_softmax_rows.h"

namespace usine::nn_internal {

// Each (sequence, head) pair is one item of a ParallelFor: its matrix products go through
// OpenBLAS on the head's strided columns of q|k|v (leading dimension 3C), in the process's
// F32MatmulPrecision as the CUDA path's Matmul calls are (cpu_gemm.h); each item writes only
// its own probabilities and its head's columns of the output, so the result does not depend on
// the threads.
//
// The products skip the hidden half of the T x T square in blocks of kCausalBlock positions:
// a block of query rows [r0, r1) reads the keys [0, past + r1) alone; in the backward pass, a
// block of keys [s0, s1) is read by the query rows [s0, T) alone. What a block computes beyond
// the diagonal (within its own square) is masked, as the whole square was before.
constexpr int64_t kCausalBlock = 64;

template <typename T>
void AttendCausally(const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv, int64_t m,
                    int64_t past, int64_t head_dim, T* p, T* out, int64_t ldout) {
  const int64_t n = past + m;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  for (int64_t r0 = 0; r0 < m; r0 += kCausalBlock) {
    const int64_t r1 = std::min(m, r0 + kCausalBlock), keys = past + r1;
    T* block = p + r0 * n;
    // p's rows [r0, r1) <- scale * q k^T over the keys they see, then each row's causal softmax.
    CpuGemmInMatmulPrecision(false, true, r1 - r0, keys, head_dim, scale, q + r0 * ldq, ldq, k,
                             ldkv, T(0), block, n);
    for (int64_t t = r0; t < r1; ++t) {
      T* row = p + t * n;
      const int64_t seen = past + t + 1;
      const T inv = static_cast<T>(1.0 / ExpShifted(row, seen, RowMax(row, seen), row));
      for (int64_t s = 0; s < seen; ++s) row[s] *= inv;
      std::fill(row + seen, row + n, T(0));
    }
    // out's rows [r0, r1) <- p v.
    CpuGemmInMatmulPrecision(false, false, r1 - r0, head_dim, keys, T(1), block, n, v, ldkv, T(0),
                             out + r0 * ldout, ldout);
  }
}

template <typename T>
void CausalAttentionForward(const T* qkv, const AttentionDims& d, T* out, T* probs) {
  const int64_t n = d.seq, dim = d.head_dim, c = d.heads * dim;
  ParallelFor(d.batch * d.heads, /*grain=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / d.heads, h = bh % d.heads;
      const T* q = qkv + b * n * 3 * c + h * dim;
      AttendCausally(q, 3 * c, q + c, q + 2 * c, 3 * c, n, /*past=*/0, dim, probs + bh * n * n,
                     out + b * n * c + h * dim, c);
    }
  });
}

template <typename T>
void CausalAttentionBackward(const T* dout, const T* qkv, const T* probs, const AttentionDims& d,
                             T* dqkv) {
  const int64_t n = d.seq, dim = d.head_dim, c = d.heads * dim;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dim)));
  ParallelFor(d.batch * d.heads, /*grain=*/1, [&](int64_t begin, int64_t end) {
    std::vector<T> ds(n * n);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / d.heads, h = bh % d.heads;
      const T* q = qkv + b * n * 3 * c + h * dim;
      const T* k = q + c;
      const T* v = q + 2 * c;
      const T* go = dout + b * n * c + h * dim;
      const T* p = probs + bh * n * n;
      T* dq = dqkv + b * n * 3 * c + h * dim;
      T* dk = dq + c;
      T* dv = dq + 2 * c;
      for (int64_t r0 = 0; r0 < n; r0 += kCausalBlock) {
        const int64_t r1 = std::min(n, r0 + kCausalBlock);
        // dp <- dout v^T (into ds) over the keys the rows see; then through the softmax and
        // the scaling: ds = scale * p (dp - sum_s p dp), zero above the diagonal up to r1.
        // Columns [r1, T) of these rows keep whatever an earlier item left: no product reads
        // them.
        CpuGemmInMatmulPrecision(false, true, r1 - r0, r1, dim, T(1), go + r0 * c, c, v, 3 * c,
                                 T(0), ds.data() + r0 * n, n);
        for (int64_t t = r0; t < r1; ++t) {
          const T* pr = p + t * n;
          T* row = ds.data() + t * n;
          double p_dp = 0;
          for (int64_t s = 0; s <= t; ++s) p_dp += static_cast<double>(pr[s]) * row[s];
          for (int64_t s = 0; s <= t; ++s) {
            row[s] = pr[s] * (row[s] - static_cast<T>(p_dp)) * scale;
          }
          std::fill(row + t + 1, row + r1, T(0));
        }
        // dq <- ds k.
        CpuGemmInMatmulPrecision(false, false, r1 - r0, dim, r1, T(1), ds.data() + r0 * n, n, k,
                                 3 * c, T(0), dq + r0 * 3 * c, 3 * c);
      }
      for (int64_t s0 = 0; s0 < n; s0 += kCausalBlock) {
        const int64_t s1 = std::min(n, s0 + kCausalBlock);
        // dv <- p^T dout and dk <- ds^T q, over the rows that see the keys [s0, s1).
        CpuGemmInMatmulPrecision(true, false, s1 - s0, dim, n - s0, T(1), p + s0 * n + s0, n,
                                 go + s0 * c, c, T(0), dv + s0 * 3 * c, 3 * c);
        CpuGemmInMatmulPrecision(true, false, s1 - s0, dim, n - s0, T(1), ds.data() + s0 * n + s0,
                                 n, q + s0 * 3 * c, 3 * c, T(0), dk + s0 * 3 * c, 3 * c);
      }
    }
  });
}

template void AttendCausally<float>(const float*, int64_t, const float*, const float*, int64_t,
                                    int64_t, int64_t, int64_t, float*, float*, int64_t);
template void AttendCausally<double>(const double*, int64_t, const double*, const double*, int64_t,
                                     int64_t, int64_t, int64_t, double*, double*, int64_t);
template void CausalAttentionForward<float>(const float*, const AttentionDims&, float*, float*);
template void CausalAttentionForward<double>(const double*, const AttentionDims&, double*, double*);
template void CausalAttentionBackward<float>(const float*, const float*, const float*,
                                             const AttentionDims&, float*);
template void CausalAttentionBackward<double>(const double*, const double*, const double*,
                                              const AttentionDims&, double*);

}  // namespace usine::nn_internal
