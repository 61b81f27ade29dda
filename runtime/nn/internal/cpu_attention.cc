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
// F32MatmulPrecision as the CUDA path's Matmul calls are (cpu_gemm.h), computing the whole
// T x T square of which the causal half is kept; each item writes only its own probabilities
// and its head's columns of the output, so the result does not depend on the threads.

template <typename T>
void AttendCausally(const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv, int64_t m,
                    int64_t past, int64_t head_dim, T* p, T* out, int64_t ldout) {
  const int64_t n = past + m;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  // p <- scale * q k^T, then the causal softmax of each row.
  CpuGemmInMatmulPrecision(false, true, m, n, head_dim, scale, q, ldq, k, ldkv, T(0), p, n);
  for (int64_t t = 0; t < m; ++t) {
    T* row = p + t * n;
    const int64_t seen = past + t + 1;
    const T inv = static_cast<T>(1.0 / ExpShifted(row, seen, RowMax(row, seen), row));
    for (int64_t s = 0; s < seen; ++s) row[s] *= inv;
    std::fill(row + seen, row + n, T(0));
  }
  // out <- p v.
  CpuGemmInMatmulPrecision(false, false, m, head_dim, n, T(1), p, n, v, ldkv, T(0), out, ldout);
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
      const T* go = dout + b * n * c + h * dim;
      const T* p = probs + bh * n * n;
      T* dq = dqkv + b * n * 3 * c + h * dim;
      // dv <- p^T dout; dp <- dout v^T (into ds).
      CpuGemmInMatmulPrecision(true, false, n, dim, n, T(1), p, n, go, c, T(0), dq + 2 * c, 3 * c);
      CpuGemmInMatmulPrecision(false, true, n, n, dim, T(1), go, c, q + 2 * c, 3 * c, T(0),
                               ds.data(), n);
      // Through the softmax and the scaling: ds = scale * p (dp - sum_s p dp), zero above the
      // diagonal where p is.
      for (int64_t t = 0; t < n; ++t) {
        const T* pr = p + t * n;
        T* row = ds.data() + t * n;
        double p_dp = 0;
        for (int64_t s = 0; s <= t; ++s) p_dp += static_cast<double>(pr[s]) * row[s];
        for (int64_t s = 0; s <= t; ++s) row[s] = pr[s] * (row[s] - static_cast<T>(p_dp)) * scale;
        std::fill(row + t + 1, row + n, T(0));
      }
      // dq <- ds k; dk <- ds^T q.
      CpuGemmInMatmulPrecision(false, false, n, dim, n, T(1), ds.data(), n, q + c, 3 * c, T(0), dq,
                               3 * c);
      CpuGemmInMatmulPrecision(true, false, n, dim, n, T(1), ds.data(), n, q, 3 * c, T(0), dq + c,
                               3 * c);
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
