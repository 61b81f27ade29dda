// GELU, tanh approximation (GPT-2's): y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))),
// elementwise on the cpu. T is float or double. In f32 on the widest vectors the cpu has
// (AVX-512's 16 lanes, AVX2's 8, else 4; cpu_exp.h's tanh), chosen once: every element the
// same bits at every width and in every position.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_GELU_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_GELU_H_

#include <cstdint>

namespace usine::nn_internal {

template <typename T>
void GeluForward(const T* x, int64_t n, T* y);

// dx = dy * gelu'(x).
template <typename T>
void GeluBackward(const T* x, const T* dy, int64_t n, T* dx);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_GELU_H_
