// Softmax cross-entropy over logits [rows, padded_vocab] on the cpu, fused with its gradient:
// the columns [vocab, padded_vocab) are padding that is never predicted (left out of the
// softmax, gradient 0). The backward pass overwrites the logits with their gradient, so a
// model needs one [rows, padded_vocab] buffer, not two; or the forward pass writes the
// gradient at once (CrossEntropyForwardWithGradient), each exponential computed once. T is
// float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_CROSS_ENTROPY_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_CROSS_ENTROPY_H_

#include <cstdint>

namespace usine::nn_internal {

struct CrossEntropyDims {
  int64_t rows = 0;
  int64_t vocab = 0;         // Columns that are classes.
  int64_t padded_vocab = 0;  // Row length of the logits.
};

// Returns the sum over rows of -log softmax(logits[r])[targets[r]] (accumulated in double) and
// writes each row's log-sum-exp to lse [rows]. REQUIRES: 0 <= targets[r] < vocab.
template <typename T>
double CrossEntropyForward(const T* logits, const int32_t* targets, const CrossEntropyDims& d,
                           T* lse);

// In place: logits[r] <- scale * (softmax(logits[r]) - onehot(targets[r])), padding <- 0.
// scale is d(objective)/d(loss of one row), e.g. 1/rows for the mean.
template <typename T>
void CrossEntropyBackward(const int32_t* targets, const T* lse, const CrossEntropyDims& d,
                          double scale, T* logits);

// CrossEntropyForward's sum (the same bits), with CrossEntropyBackward's gradient written to
// `gradient` [rows, padded_vocab] at once: each row's exponentials are stored as they are
// summed, then scaled by scale / sum, instead of computed again from the log-sum-exp (the
// values agree within a few ulps). `gradient` may be `logits` (in place). No lse: nothing
// follows that needs it.
template <typename T>
double CrossEntropyForwardWithGradient(const T* logits, const int32_t* targets,
                                       const CrossEntropyDims& d, double scale, T* gradient);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_CROSS_ENTROPY_H_
