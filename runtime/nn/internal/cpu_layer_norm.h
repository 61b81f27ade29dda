// LayerNorm over the last dimension on the cpu: y = (x - mean) * rstd * weight + bias, with
// rstd = 1 / sqrt(var + eps) (biased variance). Sums are accumulated in double. T is float or
// double. Pointers are to contiguous row-major [rows, cols] arrays (weight, bias: [cols];
// mean, rstd: [rows]).
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_LAYER_NORM_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_LAYER_NORM_H_

#include <cstdint>

namespace usine::nn_internal {

// Writes y, and the mean and rstd of each row for the backward pass.
template <typename T>
void LayerNormForward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                      double eps, T* y, T* mean, T* rstd);

// Writes dx and *adds* the gradients of weight and bias into dweight and dbias.
template <typename T>
void LayerNormBackward(const T* dy, const T* x, const T* weight, const T* mean, const T* rstd,
                       int64_t rows, int64_t cols, T* dx, T* dweight, T* dbias);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_LAYER_NORM_H_
