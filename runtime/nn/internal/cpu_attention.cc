#include "runtime/nn/internal/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace usine::nn_internal {

template <typename T>
void CausalAttentionForward(const T* qkv, const AttentionDims& d, T* out, T* probs) {
  const int64_t n = d.seq, dim = d.head_dim, c = d.heads * dim;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dim)));
  for (int64_t b = 0; b < d.batch; ++b) {
    const T* x = qkv + b * n * 3 * c;
    for (int64_t h = 0; h < d.heads; ++h) {
      T* p_head = probs + (b * d.heads + h) * n * n;
      for (int64_t t = 0; t < n; ++t) {
        const T* q = x + t * 3 * c + h * dim;
        T* p = p_head + t * n;
        T max = -INFINITY;
        for (int64_t s = 0; s <= t; ++s) {
          const T* k = x + s * 3 * c + c + h * dim;
          T dot = 0;
          for (int64_t i = 0; i < dim; ++i) dot += q[i] * k[i];
          p[s] = dot * scale;
          max = std::max(max, p[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; ++s) {
          p[s] = std::exp(p[s] - max);
          sum += p[s];
        }
        const T inv = static_cast<T>(1.0 / sum);
        for (int64_t s = 0; s <= t; ++s) p[s] *= inv;
        std::fill(p + t + 1, p + n, T(0));
        T* o = out + (b * n + t) * c + h * dim;
        std::fill(o, o + dim, T(0));
        for (int64_t s = 0; s <= t; ++s) {
          const T* v = x + s * 3 * c + 2 * c + h * dim;
          for (int64_t i = 0; i < dim; ++i) o[i] += p[s] * v[i];
        }
      }
    }
  }
}

template <typename T>
void CausalAttentionBackward(const T* dout, const T* qkv, const T* probs, const AttentionDims& d,
                             T* dqkv) {
  const int64_t n = d.seq, dim = d.head_dim, c = d.heads * dim;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dim)));
  std::fill(dqkv, dqkv + d.batch * n * 3 * c, T(0));
  std::vector<T> dp(n);
  for (int64_t b = 0; b < d.batch; ++b) {
    const T* x = qkv + b * n * 3 * c;
    T* dx = dqkv + b * n * 3 * c;
    for (int64_t h = 0; h < d.heads; ++h) {
      const T* p_head = probs + (b * d.heads + h) * n * n;
      for (int64_t t = 0; t < n; ++t) {
        const T* p = p_head + t * n;
        const T* go = dout + (b * n + t) * c + h * dim;
        // dp[s] = dout_t . v_s; dv_s += p[s] dout_t.
        double p_dp = 0;
        for (int64_t s = 0; s <= t; ++s) {
          const T* v = x + s * 3 * c + 2 * c + h * dim;
          T* dv = dx + s * 3 * c + 2 * c + h * dim;
          T dot = 0;
          for (int64_t i = 0; i < dim; ++i) {
            dot += go[i] * v[i];
            dv[i] += p[s] * go[i];
          }
          dp[s] = dot;
          p_dp += static_cast<double>(p[s]) * dot;
        }
        // Through the softmax: dscore[s] = p[s] (dp[s] - sum_j p[j] dp[j]); then the scaling.
        const T* q = x + t * 3 * c + h * dim;
        T* dq = dx + t * 3 * c + h * dim;
        for (int64_t s = 0; s <= t; ++s) {
          const T dscore = p[s] * (dp[s] - static_cast<T>(p_dp)) * scale;
          const T* k = x + s * 3 * c + c + h * dim;
          T* dk = dx + s * 3 * c + c + h * dim;
          for (int64_t i = 0; i < dim; ++i) {
            dq[i] += dscore * k[i];
            dk[i] += dscore * q[i];
          }
        }
      }
    }
  }
}

template void CausalAttentionForward<float>(const float*, const AttentionDims&, float*, float*);
template void CausalAttentionForward<double>(const double*, const AttentionDims&, double*, double*);
template void CausalAttentionBackward<float>(const float*, const float*, const float*,
                                             const AttentionDims&, float*);
template void CausalAttentionBackward<double>(const double*, const double*, const double*,
                                              const AttentionDims&, double*);

}  // namespace usine::nn_internal
