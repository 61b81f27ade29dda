#include "runtime/nn/internal/cpu_layer_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

// The backward pass is one pass over the rows, in chunks of kRowChunk rows: each chunk writes
// its rows' dx and its own partial sums of the weight's and the bias's gradients, in double;
// the partial sums are then added in chunk order. The chunks do not depend on the threads, so
// neither do the bits.
constexpr int64_t kRowChunk = 32;

template <typename T>
void LayerNormBackward(const T* dy, const T* x, const T* weight, const T* mean, const T* rstd,
                       int64_t rows, int64_t cols, T* dx, T* dweight, T* dbias) {
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  // Chunk i's sums: dweight's at [2i * cols, (2i + 1) * cols), dbias's after them.
  std::vector<double> partial(static_cast<size_t>(2 * chunks * cols), 0.0);
  ParallelFor(chunks, /*grain=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      double* pw = partial.data() + 2 * chunk * cols;
      double* pb = pw + cols;
      for (int64_t r = chunk * kRowChunk; r < std::min(rows, (chunk + 1) * kRowChunk); ++r) {
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
          const double dyc = dyr[c];
          dxr[c] = static_cast<T>(s * (g(c) - g_mean - xhat * g_xhat_mean));
          pw[c] += dyc * xhat;
          pb[c] += dyc;
        }
      }
    }
  });
  ParallelFor(cols, /*grain=*/256, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double w = 0, b = 0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        w += partial[2 * chunk * cols + c];
        b += partial[(2 * chunk + 1) * cols + c];
      }
      dweight[c] += static_cast<T>(w);
      dbias[c] += static_cast<T>(b);
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
