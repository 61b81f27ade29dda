#include "runtime/nn/internal/cpu_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/parallel_for.h"

namespace usine::nn_internal {

template <typename T>
double CrossEntropyForward(const T* logits, const int32_t* targets, const CrossEntropyDims& d,
                           T* lse) {
  std::vector<double> row_loss(d.rows);
  ParallelFor(d.rows, /*grain=*/4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = logits + r * d.padded_vocab;
      const double max = *std::max_element(row, row + d.vocab);
      double sum = 0;
      for (int64_t j = 0; j < d.vocab; ++j) sum += std::exp(row[j] - max);
      const double log_sum_exp = max + std::log(sum);
      lse[r] = static_cast<T>(log_sum_exp);
      row_loss[r] = log_sum_exp - row[targets[r]];
    }
  });
  double total = 0;  // In row order, whatever the threads: the same bits every time.
  for (int64_t r = 0; r < d.rows; ++r) total += row_loss[r];
  return total;
}

template <typename T>
void CrossEntropyBackward(const int32_t* targets, const T* lse, const CrossEntropyDims& d,
                          double scale, T* logits) {
  ParallelFor(d.rows, /*grain=*/4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      T* row = logits + r * d.padded_vocab;
      const double log_sum_exp = lse[r];
      for (int64_t j = 0; j < d.vocab; ++j) {
        const double p = std::exp(row[j] - log_sum_exp);
        row[j] = static_cast<T>(scale * (p - (j == targets[r] ? 1.0 : 0.0)));
      }
      std::fill(row + d.vocab, row + d.padded_vocab, T(0));
    }
  });
}

template double CrossEntropyForward<float>(const float*, const int32_t*, const CrossEntropyDims&,
                                           float*);
template double CrossEntropyForward<double>(const double*, const int32_t*, const CrossEntropyDims&,
                                            double*);
template void CrossEntropyBackward<float>(const int32_t*, const float*, const CrossEntropyDims&,
                                          double, float*);
template void CrossEntropyBackward<double>(const int32_t*, const double*, const CrossEntropyDims&,
                                           double, double*);

}  // namespace usine::nn_internal
