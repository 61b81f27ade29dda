// Elementwise helpers of the cpu layers that the kernels library has no f64 form of: residual
// sums and bias gradients. T is float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_ELEMENTWISE_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_ELEMENTWISE_H_

#include <cstdint>

namespace usine::nn_internal {

// out[i] = a[i] + b[i]; out may be a or b.
template <typename T>
void AddArrays(const T* a, const T* b, int64_t n, T* out);

// sums[c] += sum over r of x[r, c], for x [rows, cols].
template <typename T>
void AccumulateColumnSums(const T* x, int64_t rows, int64_t cols, T* sums);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_ELEMENTWISE_H_
