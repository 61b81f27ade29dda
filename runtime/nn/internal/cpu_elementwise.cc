#include "runtime/nn/internal/cpu_elementwise.h"

#include "runtime/core/parallel_for.h"

namespace usine::nn_internal {

template <typename T>
void AddArrays(const T* a, const T* b, int64_t n, T* out) {
  ParallelFor(n, /*grain=*/1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
  });
}

template <typename T>
void AccumulateColumnSums(const T* x, int64_t rows, int64_t cols, T* sums) {
  // Threads take columns, each summing in row order: the same bits at any thread count.
  ParallelFor(cols, /*grain=*/64, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = begin; c < end; ++c) sums[c] += x[r * cols + c];
    }
  });
}

template void AddArrays<float>(const float*, const float*, int64_t, float*);
template void AddArrays<double>(const double*, const double*, int64_t, double*);
template void AccumulateColumnSums<float>(const float*, int64_t, int64_t, float*);
template void AccumulateColumnSums<double>(const double*, int64_t, int64_t, double*);

}  // namespace usine::nn_internal
