#include "runtime/nn/internal/cpu_gelu.h"

#include <cmath>

#include "runtime/core/parallel_for.h"
#include "runtime/nn/internal/cpu_exp.h"

namespace usine::nn_internal {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;
constexpr int64_t kGrain = 1 << 14;  // Elements per thread at least.

// GELU's tanh argument u(v), GELU from v and t = tanh(u), and GELU's slope from v and t; V is
// float, Float4 or double, S its scalar type.
template <typename S, typename V>
V GeluArgument(V v) {
  return static_cast<S>(kSqrt2OverPi) * (v + static_cast<S>(kCubic) * v * v * v);
}
template <typename S, typename V>
V Gelu(V v, V t) {
  return static_cast<S>(0.5) * v * (static_cast<S>(1) + t);
}
template <typename S, typename V>
V GeluSlope(V v, V t) {
  const V du =
      static_cast<S>(kSqrt2OverPi) * (static_cast<S>(1) + static_cast<S>(3 * kCubic) * v * v);
  return static_cast<S>(0.5) * (static_cast<S>(1) + t) +
         static_cast<S>(0.5) * v * (static_cast<S>(1) - t * t) * du;
}

}  // namespace

template <>
void GeluForward<float>(const float* x, int64_t n, float* y) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 4 <= end; i += 4) {
      const Float4 v = Load4(x + i);
      Store4(y + i, Gelu<float>(v, Tanh(GeluArgument<float>(v))));
    }
    for (; i < end; ++i) y[i] = Gelu<float>(x[i], Tanh(GeluArgument<float>(x[i])));
  });
}

template <>
void GeluBackward<float>(const float* x, const float* dy, int64_t n, float* dx) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 4 <= end; i += 4) {
      const Float4 v = Load4(x + i);
      Store4(dx + i, Load4(dy + i) * GeluSlope<float>(v, Tanh(GeluArgument<float>(v))));
    }
    for (; i < end; ++i) dx[i] = dy[i] * GeluSlope<float>(x[i], Tanh(GeluArgument<float>(x[i])));
  });
}

template <>
void GeluForward<double>(const double* x, int64_t n, double* y) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      y[i] = Gelu<double>(x[i], std::tanh(GeluArgument<double>(x[i])));
    }
  });
}

template <>
void GeluBackward<double>(const double* x, const double* dy, int64_t n, double* dx) {
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dx[i] = dy[i] * GeluSlope<double>(x[i], std::tanh(GeluArgument<double>(x[i])));
    }
  });
}

}  // namespace usine::nn_internal
