#include "runtime/nn/internal/cpu_vocab_parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace usine::nn_internal {
namespace {

bool Owns(const VocabSlice& s, int64_t id) { return id >= s.begin && id < s.begin + s.count; }

}  // namespace

std::vector<int32_t> SliceRows(const std::vector<int32_t>& ids, const VocabSlice& s) {
  std::vector<int32_t> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    rows[i] = Owns(s, ids[i]) ? static_cast<int32_t>(ids[i] - s.begin) : -1;
  }
  return rows;
}

template <typename T>
void SliceEmbeddingForward(const int32_t* ids, int64_t n, const T* table, const VocabSlice& s,
                           int64_t dim, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    T* row = out + i * dim;
    if (Owns(s, ids[i])) {
      std::copy_n(table + (ids[i] - s.begin) * dim, dim, row);
    } else {
      std::fill_n(row, dim, T(0));
    }
  }
}

template <typename T>
void SliceEmbeddingBackward(const int32_t* ids, int64_t n, const T* dout, const VocabSlice& s,
                            int64_t dim, T* dtable) {
  for (int64_t i = 0; i < n; ++i) {
    if (!Owns(s, ids[i])) continue;
    T* row = dtable + (ids[i] - s.begin) * dim;
    const T* d = dout + i * dim;
    for (int64_t j = 0; j < dim; ++j) row[j] += d[j];
  }
}

template <typename T>
void SliceRowMax(const T* logits, int64_t rows, const VocabSlice& s, T* max) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * s.count;
    max[r] =
        s.valid > 0 ? *std::max_element(row, row + s.valid) : -std::numeric_limits<T>::infinity();
  }
}

template <typename T>
void SliceSumExpAndTarget(const T* logits, const int32_t* targets, int64_t rows,
                          const VocabSlice& s, const T* max, T* sums) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * s.count;
    double sum = 0;
    for (int64_t j = 0; j < s.valid; ++j) sum += std::exp(static_cast<double>(row[j]) - max[r]);
    sums[r] = static_cast<T>(sum);
    sums[rows + r] = Owns(s, targets[r]) ? row[targets[r] - s.begin] : T(0);
  }
}

template <typename T>
void SliceCrossEntropyBackward(const int32_t* targets, const T* lse, int64_t rows,
                               const VocabSlice& s, double scale, T* logits) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = logits + r * s.count;
    const double log_sum_exp = lse[r];
    for (int64_t j = 0; j < s.valid; ++j) {
      const double p = std::exp(row[j] - log_sum_exp);
      row[j] = static_cast<T>(scale * (p - (s.begin + j == targets[r] ? 1.0 : 0.0)));
    }
    std::fill(row + s.valid, row + s.count, T(0));
  }
}

#define USINE_INSTANTIATE_VOCAB_PARALLEL(T)                                                        \
  template void SliceEmbeddingForward<T>(const int32_t*, int64_t, const T*, const VocabSlice&,     \
                                         int64_t, T*);                                             \
  template void SliceEmbeddingBackward<T>(const int32_t*, int64_t, const T*, const VocabSlice&,    \
                                          int64_t, T*);                                            \
  template void SliceRowMax<T>(const T*, int64_t, const VocabSlice&, T*);                          \
  template void SliceSumExpAndTarget<T>(const T*, const int32_t*, int64_t, const VocabSlice&,      \
                                        const T*, T*);                                             \
  template void SliceCrossEntropyBackward<T>(const int32_t*, const T*, int64_t, const VocabSlice&, \
                                             double, T*);

USINE_INSTANTIATE_VOCAB_PARALLEL(float)
USINE_INSTANTIATE_VOCAB_PARALLEL(double)

#undef USINE_INSTANTIATE_VOCAB_PARALLEL

}  // namespace usine::nn_internal
