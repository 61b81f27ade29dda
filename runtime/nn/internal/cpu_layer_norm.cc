#include "runtime/nn/internal/cpu_layer_norm.h"

#include <cmath>

#include "runtime/core/parallel_for.h"

namespace usine::nn_internal {
namespace {

// The sum of term(c) over c in [0, cols), in double: four partial sums (c = 4i + k goes to sum
// k; the tail past the last multiple of 4 to sum 0) added as (s0 + s1) + (s2 + s3). Four
// independent chains of additions, which the cpu overlaps, where one chain made each addition
// wait for the last; a fixed order, so the same bits on every call.
template <typename Term>
[[gnu::always_inline]] inline double RowSum(int64_t cols, const Term& term) {
  double s[4] = {0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 4 <= cols; c += 4) {
    for (int k = 0; k < 4; ++k) s[k] += term(c + k);
  }
  for (; c < cols; ++c) s[0] += term(c);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

}  // namespace

template <typename T>
void LayerNormForward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                      double eps, T* y, T* mean, T* rstd) {
  ParallelFor(rows, /*grain=*/16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      const double sum = RowSum(cols, [&](int64_t c) { return static_cast<double>(xr[c]); });
      const double m = sum / static_cast<double>(cols);
      const double squares = RowSum(cols, [&](int64_t c) { return (xr[c] - m) * (xr[c] - m); });
      const double s = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
      T* yr = y + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        yr[c] = static_cast<T>((xr[c] - m) * s * weight[c] + bias[c]);
      }
      mean[r] = static_cast<T>(m);
      rstd[r] = static_cast<T>(s);
    }
  });
}

template <typename T>
void LayerNormBackward(const T* dy, const T* x, const T* weight, const T* mean, const T* rstd,
                       int64_t rows, int64_t cols, T* dx, T* dweight, T* dbias) {
  // dweight and dbias sum over rows: threads take columns, each summing in row order.
  ParallelFor(cols, /*grain=*/64, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      const double m = mean[r], s = rstd[r];
      for (int64_t c = begin; c < end; ++c) {
        const double xhat = (xr[c] - m) * s;
        dweight[c] += static_cast<T>(dyr[c] * xhat);
        dbias[c] += dyr[c];
      }
    }
  });
  ParallelFor(rows, /*grain=*/16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      const double m = mean[r], s = rstd[r];
      // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), where g = dy * weight.
      const auto g = [&](int64_t c) { return static_cast<double>(dyr[c]) * weight[c]; };
      const double g_sum = RowSum(cols, g);
      const double g_xhat_sum = RowSum(cols, [&](int64_t c) { return g(c) * ((xr[c] - m) * s); });
      const double g_mean = g_sum / static_cast<double>(cols);
      const double g_xhat_mean = g_xhat_sum / static_cast<double>(cols);
      T* dxr = dx + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const double xhat = (xr[c] - m) * s;
        const double g = static_cast<double>(dyr[c]) * weight[c];
        dxr[c] = static_cast<T>(s * (g - g_mean - xhat * g_xhat_mean));
      }
    }
  });
}

#define USINE_INSTANTIATE(T)                                                                    \
  template void LayerNormForward<T>(const T*, const T*, const T*, int64_t, int64_t, double, T*, \
                                    T*, T*);                                                    \
  template void LayerNormBackward<T>(const T*, const T*, const T*, const T*, const T*, int64_t, \
                                     int64_t, T*, T*, T*);
USINE_INSTANTIATE(float)
USINE_INSTANTIATE(double)
#undef USINE_INSTANTIATE

}  // namespace usine::nn_internal
