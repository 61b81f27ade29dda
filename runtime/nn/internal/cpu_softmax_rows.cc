#include "runtime/nn/internal/cpu_softmax_rows.h"

#include <algorithm>
#include <cmath>

#include "runtime/nn/internal/cpu_exp.h"

namespace usine::nn_internal {
namespace {

constexpr int64_t kStep = 16;  // Four Float4 accumulators.
// Lanes sum in f32 over at most this many elements, then into a double: the f32 partial sums
// stay short (64 terms a lane) whatever the row's length.
constexpr int64_t kBlock = 1024;

// The sum of e^(x[j] - shift) over [begin, end), storing each term to out[j] if kStore.
// REQUIRES: end - begin <= kBlock.
template <bool kStore>
double ExpBlock(const float* x, int64_t begin, int64_t end, float shift, float* out) {
  Float4 acc[4] = {};
  int64_t j = begin;
  for (; j + kStep <= end; j += kStep) {
    for (int64_t v = 0; v < 4; ++v) {
      const Float4 e = Exp(Load4(x + j + 4 * v) - shift);
      if constexpr (kStore) Store4(out + j + 4 * v, e);
      acc[v] += e;
    }
  }
  double sum = 0;
  for (int64_t v = 0; v < 4; ++v) {
    for (int l = 0; l < 4; ++l) sum += acc[v][l];
  }
  for (; j < end; ++j) {
    const float e = Exp(x[j] - shift);
    if constexpr (kStore) out[j] = e;
    sum += e;
  }
  return sum;
}

template <bool kStore>
double ExpShiftedRow(const float* x, int64_t n, float shift, float* out) {
  double sum = 0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    sum += ExpBlock<kStore>(x, begin, std::min(n, begin + kBlock), shift, out);
  }
  return sum;
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
  return ExpShiftedRow<false>(x, n, shift, nullptr);
}

double SumExpShifted(const double* x, int64_t n, double shift) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(x[j] - shift);
  return sum;
}

double ExpShifted(const float* x, int64_t n, float shift, float* out) {
  return ExpShiftedRow<true>(x, n, shift, out);
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
