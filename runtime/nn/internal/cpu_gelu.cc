#include "runtime/nn/internal/cpu_gelu.h"

// The 8- and 16-lane vectors live only inside the AVX2 and AVX-512 functions below, which
// inline everything they call (cpu_softmax_rows.cc's scheme).
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <cmath>
#include <type_traits>

#include "runtime/core/parallel_for.h"
#include "runtime/nn/internal/cpu_exp.h"

namespace usine::nn_internal {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;
constexpr int64_t kGrain = 1 << 14;  // Elements per thread at least.

// GELU's tanh argument u(v), GELU from v and t = tanh(u), and GELU's slope from v and t; V is
// float, FloatLanes or double, S its scalar type.
template <typename S, typename V>
[[gnu::always_inline]] inline V GeluArgument(V v) {
  return static_cast<S>(kSqrt2OverPi) * (v + static_cast<S>(kCubic) * v * v * v);
}
template <typename S, typename V>
[[gnu::always_inline]] inline V Gelu(V v, V t) {
  return static_cast<S>(0.5) * v * (static_cast<S>(1) + t);
}
template <typename S, typename V>
[[gnu::always_inline]] inline V GeluSlope(V v, V t) {
  const V du =
      static_cast<S>(kSqrt2OverPi) * (static_cast<S>(1) + static_cast<S>(3 * kCubic) * v * v);
  return static_cast<S>(0.5) * (static_cast<S>(1) + t) +
         static_cast<S>(0.5) * v * (static_cast<S>(1) - t * t) * du;
}

// The f32 loops, over [begin, end): out <- GELU(x), or with kBackward out <- dy GELU'(x), in
// vectors of kLanes, then one element at a time (lane 0 of a Float4). Each element takes the
// same IEEE operations at every width, so every width gives the same bits (cpu_exp.h).
template <bool kBackward>
struct GeluSpan {
  const float* x;
  const float* dy;  // kBackward only.
  float* out;

  // V: float or FloatLanes.
  template <typename V>
  [[gnu::always_inline]] static inline V Value(V v, V g) {
    V t;
    if constexpr (std::is_same_v<V, float>) {
      t = Tanh(GeluArgument<float>(v));
    } else {
      t = TanhLanes(GeluArgument<float>(v));
    }
    if constexpr (kBackward) return g * GeluSlope<float>(v, t);
    return Gelu<float>(v, t);
  }

  template <int kLanes>
  [[gnu::always_inline]] inline void Run(int64_t begin, int64_t end) const {
    using F = FloatLanes<kLanes>;
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      Store(out + i, Value(Load<F>(x + i), kBackward ? Load<F>(dy + i) : F{}));
    }
    for (; i < end; ++i) out[i] = Value(x[i], kBackward ? dy[i] : 0.0f);
  }
};

// A span at each width the cpu may run; `flatten` compiles what they call for their
// instruction sets too.
template <typename Span>
void RunSse(const Span& span, int64_t begin, int64_t end) {
  span.template Run<4>(begin, end);
}
#if defined(__x86_64__)
template <typename Span>
__attribute__((target("avx2"), flatten)) void RunAvx2(const Span& span, int64_t begin,
                                                      int64_t end) {
  span.template Run<8>(begin, end);
}
template <typename Span>
__attribute__((target("avx512f"), flatten)) void RunAvx512(const Span& span, int64_t begin,
                                                           int64_t end) {
  span.template Run<16>(begin, end);
}
#endif

template <typename Span>
using RunFn = void (*)(const Span&, int64_t, int64_t);

// The widest this cpu runs, chosen once.
template <typename Span>
RunFn<Span> Widest() {
  static const RunFn<Span> widest = [] {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return &RunAvx512<Span>;
    if (__builtin_cpu_supports("avx2")) return &RunAvx2<Span>;
#endif
    return &RunSse<Span>;
  }();
  return widest;
}

template <typename Span>
void RunInParallel(const Span& span, int64_t n) {
  const RunFn<Span> run = Widest<Span>();
  ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) { run(span, begin, end); });
}

}  // namespace

template <>
void GeluForward<float>(const float* x, int64_t n, float* y) {
  RunInParallel(GeluSpan<false>{x, nullptr, y}, n);
}

template <>
void GeluBackward<float>(const float* x, const float* dy, int64_t n, float* dx) {
  RunInParallel(GeluSpan<true>{x, dy, dx}, n);
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
