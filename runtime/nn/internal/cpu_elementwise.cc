#include "runtime/nn/internal/cpu_elementwise.h"

namespace usine::nn_internal {

template <typename T>
void AddArrays(const T* a, const T* b, int64_t n, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void AccumulateColumnSums(const T* x, int64_t rows, int64_t cols, T* sums) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) sums[c] += x[r * cols + c];
  }
}

template void AddArrays<float>(const float*, const float*, int64_t, float*);
template void AddArrays<double>(const double*, const double*, int64_t, double*);
template void AccumulateColumnSums<float>(const float*, int64_t, int64_t, float*);
template void AccumulateColumnSums<double>(const double*, int64_t, int64_t, double*);

}  // namespace usine::nn_internal
