#include "runtime/nn/internal/cpu_gelu.h"

#include <cmath>

#include "runtime/core/parallel_for.h"

namespace usine::nn_internal {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;
constexpr int64_t kGrain = 1 << 14;  // Elements per thread at least.

}  // namespace

template <typename T>
void GeluForward(const T* x, int64_t n, T* y) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = x[i];
      const T u = static_cast<T>(kSqrt2OverPi) * (v + static_cast<T>(kCubic) * v * v * v);
      y[i] = static_cast<T>(0.5) * v * (static_cast<T>(1) + std::tanh(u));
    }
  });
}

template <typename T>
void GeluBackward(const T* x, const T* dy, int64_t n, T* dx) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = x[i];
      const T u = static_cast<T>(kSqrt2OverPi) * (v + static_cast<T>(kCubic) * v * v * v);
      const T t = std::tanh(u);
      const T du = static_cast<T>(kSqrt2OverPi) * (1 + static_cast<T>(3 * kCubic) * v * v);
      const T grad = static_cast<T>(0.5) * (1 + t) + static_cast<T>(0.5) * v * (1 - t * t) * du;
      dx[i] = dy[i] * grad;
    }
  });
}

template void GeluForward<float>(const float*, int64_t, float*);
template void GeluForward<double>(const double*, int64_t, double*);
template void GeluBackward<float>(const float*, const float*, int64_t, float*);
template void GeluBackward<double>(const double*, const double*, int64_t, double*);

}  // namespace usine::nn_internal
