// The per-rank arithmetic of the vocabulary-parallel layers on the cpu: this rank owns the
// rows (embedding) or columns (logits) [begin, begin + count) of the padded vocabulary.
// T is float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_VOCAB_PARALLEL_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_VOCAB_PARALLEL_H_

#include <cstdint>
#include <vector>

namespace usine::nn_internal {

struct VocabSlice {
  int64_t begin = 0;  // First id (row of the full table, column of the full logits) owned.
  int64_t count = 0;  // Ids owned: rows of the local table, columns of the local logits.
  int64_t valid = 0;  // Of those, the classes (ids < vocab); the rest is padding.
};

// The rows of this rank's table for `ids`: id - s.begin for the ids in the slice, -1 for the
// others (as the CUDA embedding functions take them, cuda_layers.h).
std::vector<int32_t> SliceRows(const std::vector<int32_t>& ids, const VocabSlice& s);

// out[i] = table[ids[i] - begin] for ids in the slice, 0 for the others.
template <typename T>
void SliceEmbeddingForward(const int32_t* ids, int64_t n, const T* table, const VocabSlice& s,
                           int64_t dim, T* out);

// dtable[ids[i] - begin] += dout[i] for ids in the slice, in order of i.
template <typename T>
void SliceEmbeddingBackward(const int32_t* ids, int64_t n, const T* dout, const VocabSlice& s,
                            int64_t dim, T* dtable);

// Per row r of logits [rows, s.count]: max[r] over the valid columns (-inf if none).
template <typename T>
void SliceRowMax(const T* logits, int64_t rows, const VocabSlice& s, T* max);

// Per row: sums[r] = sum over valid columns of exp(logit - max[r]) (accumulated in double),
// sums[rows + r] = the target's logit if this rank owns it, else 0.
template <typename T>
void SliceSumExpAndTarget(const T* logits, const int32_t* targets, int64_t rows,
                          const VocabSlice& s, const T* max, T* sums);

// In place: logits[r] <- scale * (softmax - onehot(target)) on the valid columns, 0 on the
// padding, from the row's global log-sum-exp lse[r].
template <typename T>
void SliceCrossEntropyBackward(const int32_t* targets, const T* lse, int64_t rows,
                               const VocabSlice& s, double scale, T* logits);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_VOCAB_PARALLEL_H_
