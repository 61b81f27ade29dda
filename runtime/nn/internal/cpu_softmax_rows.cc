#include "runtime/nn/internal/cpu_softmax_rows.h"

// The 8- and 16-lane vectors live only inside the AVX2 and AVX-512 functions below, which
// inline everything they call (flatten; always_inline helpers, at -O0 too): no vector crosses
// a call between the instruction sets, so the compilers' note that such a call would pass them
// differently does not apply.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <algorithm>
#include <cmath>
#include <optional>

#include "runtime/nn/internal/cpu_exp.h"

namespace usine::nn_internal {
namespace {

constexpr int64_t kStep = 16;  // Four Float4 accumulators (two of 8 lanes, one of 16).
// Lanes sum in f32 over at most this many elements, then into a double: the f32 partial sums
// stay short (64 terms a lane) whatever the row's length.
constexpr int64_t kBlock = 1024;

// The sum of e^(x[j] - shift) over [begin, end), storing each term to out[j] if kStore, in
// vectors of kLanes. Element j + i of each step of kStep goes to partial sum i, whatever
// kLanes, and the partial sums are added in the order of i: the same bits at every width.
// REQUIRES: end - begin <= kBlock.
template <bool kStore, int kLanes>
[[gnu::always_inline]] inline double ExpBlock(const float* x, int64_t begin, int64_t end,
                                              float shift, float* out) {
  using F = FloatLanes<kLanes>;
  constexpr int kVectors = kStep / kLanes;
  F acc[kVectors] = {};
  int64_t j = begin;
  for (; j + kStep <= end; j += kStep) {
    for (int64_t v = 0; v < kVectors; ++v) {
      const F e = ExpLanes(Load<F>(x + j + kLanes * v) - shift);
      if constexpr (kStore) Store(out + j + kLanes * v, e);
      acc[v] += e;
    }
  }
  double sum = 0;
  for (int v = 0; v < kVectors; ++v) {
    for (int l = 0; l < kLanes; ++l) sum += acc[v][l];
  }
  for (; j < end; ++j) {
    const float e = Exp(x[j] - shift);
    if constexpr (kStore) out[j] = e;
    sum += e;
  }
  return sum;
}

template <bool kStore, int kLanes>
[[gnu::always_inline]] inline double ExpShiftedRow(const float* x, int64_t n, float shift,
                                                   float* out) {
  double sum = 0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    sum += ExpBlock<kStore, kLanes>(x, begin, std::min(n, begin + kBlock), shift, out);
  }
  return sum;
}

// The row at each width the cpu may run. `flatten` compiles what they call (ExpLanes, the
// loads) for their instruction sets too.
template <bool kStore>
double ExpShiftedRowSse(const float* x, int64_t n, float shift, float* out) {
  return ExpShiftedRow<kStore, 4>(x, n, shift, out);
}
#if defined(__x86_64__)
template <bool kStore>
__attribute__((target("avx2"), flatten)) double ExpShiftedRowAvx2(const float* x, int64_t n,
                                                                  float shift, float* out) {
  return ExpShiftedRow<kStore, 8>(x, n, shift, out);
}
template <bool kStore>
__attribute__((target("avx512f"), flatten)) double ExpShiftedRowAvx512(const float* x, int64_t n,
                                                                       float shift, float* out) {
  return ExpShiftedRow<kStore, 16>(x, n, shift, out);
}
#endif

using ExpShiftedRowFn = double (*)(const float*, int64_t, float, float*);

// The row at `lanes`, or null where the cpu (or the build) has no such vectors.
template <bool kStore>
ExpShiftedRowFn ExpShiftedRowAt(int lanes) {
  switch (lanes) {
    case 4:
      return &ExpShiftedRowSse<kStore>;
#if defined(__x86_64__)
    case 8:
      return __builtin_cpu_supports("avx2") ? &ExpShiftedRowAvx2<kStore> : nullptr;
    case 16:
      return __builtin_cpu_supports("avx512f") ? &ExpShiftedRowAvx512<kStore> : nullptr;
#endif
    default:
      return nullptr;
  }
}

// The widest row this cpu runs, chosen once.
template <bool kStore>
ExpShiftedRowFn WidestExpShiftedRow() {
  static const ExpShiftedRowFn widest = [] {
    for (const int lanes : {16, 8}) {
      if (const ExpShiftedRowFn row = ExpShiftedRowAt<kStore>(lanes)) return row;
    }
    return ExpShiftedRowAt<kStore>(4);
  }();
  return widest;
}

}  // namespace

float RowMax(const float* x, int64_t n) {
  int64_t j = 0;
  float max = x[0];
  if (n >= kStep) {
    Float4 acc[4];
    for (int64_t v = 0; v < 4; ++v) acc[v] = Load4(x + 4 * v);
    for (j = kStep; j + kStep <= n; j += kStep) {
      for (int64_t v = 0; v < 4; ++v) {
        const Float4 y = Load4(x + j + 4 * v);
        acc[v] = Select4(acc[v] < y, y, acc[v]);
      }
    }
    for (int64_t v = 0; v < 4; ++v) {
      for (int l = 0; l < 4; ++l) max = std::max(max, acc[v][l]);
    }
  }
  for (; j < n; ++j) max = std::max(max, x[j]);
  return max;
}

double RowMax(const double* x, int64_t n) { return *std::max_element(x, x + n); }

double SumExpShifted(const float* x, int64_t n, float shift) {
  return WidestExpShiftedRow<false>()(x, n, shift, nullptr);
}

double SumExpShifted(const double* x, int64_t n, double shift) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(x[j] - shift);
  return sum;
}

double ExpShifted(const float* x, int64_t n, float shift, float* out) {
  return WidestExpShiftedRow<true>()(x, n, shift, out);
}

std::optional<double> ExpShiftedAtLanes(int lanes, const float* x, int64_t n, float shift,
                                        float* out) {
  const ExpShiftedRowFn row = ExpShiftedRowAt<true>(lanes);
  if (row == nullptr) return std::nullopt;
  return row(x, n, shift, out);
}

double ExpShifted(const double* x, int64_t n, double shift, double* out) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    out[j] = std::exp(x[j] - shift);
    sum += out[j];
  }
  return sum;
}

}  // namespace usine::nn_internal
