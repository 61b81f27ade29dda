#include "runtime/nn/internal/cpu_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/parallel_for.h"
#include "runtime/nn/internal/cpu_exp.h"
#include "runtime/nn/internal/cpu_softmax_rows.h"

namespace usine::nn_internal {
namespace {

// row[j] <- scale * e^(row[j] - log_sum_exp) for j in [0, n).
void ScaledSoftmax(float* row, int64_t n, float log_sum_exp, float scale) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) Store4(row + j, scale * Exp(Load4(row + j) - log_sum_exp));
  for (; j < n; ++j) row[j] = scale * Exp(row[j] - log_sum_exp);
}

void ScaledSoftmax(double* row, int64_t n, double log_sum_exp, double scale) {
  for (int64_t j = 0; j < n; ++j) row[j] = scale * std::exp(row[j] - log_sum_exp);
}

// In row order, whatever the threads: the same bits every time.
double SumInRowOrder(const std::vector<double>& row_loss) {
  double total = 0;
  for (const double loss : row_loss) total += loss;
  return total;
}

}  // namespace

template <typename T>
double CrossEntropyForward(const T* logits, const int32_t* targets, const CrossEntropyDims& d,
                           T* lse) {
  std::vector<double> row_loss(d.rows);
  ParallelFor(d.rows, /*grain=*/4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = logits + r * d.padded_vocab;
      const T max = RowMax(row, d.vocab);
      const double log_sum_exp = max + std::log(SumExpShifted(row, d.vocab, max));
      lse[r] = static_cast<T>(log_sum_exp);
      row_loss[r] = log_sum_exp - row[targets[r]];
    }
  });
  return SumInRowOrder(row_loss);
}

template <typename T>
void CrossEntropyBackward(const int32_t* targets, const T* lse, const CrossEntropyDims& d,
                          double scale, T* logits) {
  ParallelFor(d.rows, /*grain=*/4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      T* row = logits + r * d.padded_vocab;
      ScaledSoftmax(row, d.vocab, lse[r], static_cast<T>(scale));
      row[targets[r]] -= static_cast<T>(scale);
      std::fill(row + d.vocab, row + d.padded_vocab, static_cast<T>(0));
    }
  });
}

template <typename T>
double CrossEntropyForwardWithGradient(const T* logits, const int32_t* targets,
                                       const CrossEntropyDims& d, double scale, T* gradient) {
  std::vector<double> row_loss(d.rows);
  ParallelFor(d.rows, /*grain=*/4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = logits + r * d.padded_vocab;
      T* grad = gradient + r * d.padded_vocab;
      const T target_logit = row[targets[r]];  // Read before `grad` may overwrite it.
      const T max = RowMax(row, d.vocab);
      const double sum = ExpShifted(row, d.vocab, max, grad);
      row_loss[r] = max + std::log(sum) - target_logit;
      const T factor = static_cast<T>(scale / sum);
      for (int64_t j = 0; j < d.vocab; ++j) grad[j] *= factor;
      grad[targets[r]] -= static_cast<T>(scale);
      std::fill(grad + d.vocab, grad + d.padded_vocab, static_cast<T>(0));
    }
  });
  return SumInRowOrder(row_loss);
}

template double CrossEntropyForward<float>(const float*, const int32_t*, const CrossEntropyDims&,
                                           float*);
template double CrossEntropyForward<double>(const double*, const int32_t*, const CrossEntropyDims&,
                                            double*);
template void CrossEntropyBackward<float>(const int32_t*, const float*, const CrossEntropyDims&,
                                          double, float*);
template void CrossEntropyBackward<double>(const int32_t*, const double*, const CrossEntropyDims&,
                                           double, double*);

template double CrossEntropyForwardWithGradient<float>(const float*, const int32_t*,
                                                       const CrossEntropyDims&, double, float*);
template double CrossEntropyForwardWithGradient<double>(const double*, const int32_t*,
                                                        const CrossEntropyDims&, double, double*);

}  // namespace usine::nn_internal
