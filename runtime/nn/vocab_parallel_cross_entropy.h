// Softmax cross-entropy over logits split by vocabulary over a tensor-parallel group
// (Megatron-LM's vocab-parallel cross-entropy), the counterpart of SoftmaxCrossEntropy
// (cross_entropy.h) for a VocabParallelEmbedding-tied output projection: each rank holds the
// columns [vocab_begin, vocab_begin + local) of the padded logits [N, padded_vocab], and no
// rank ever holds them all. Per row, the max and the sum of exponentials are all-reduced over
// the group, and the target's logit comes from the rank that owns it (an all-reduce of a sum
// where the others give 0); the loss, the mean over rows of lse - logit[target], is then the
// same on every rank. Columns >= vocab are padding: never predicted, gradient 0. Backward
// overwrites the local logits with their gradient, without communication. No parameters.
//
//   VocabParallelCrossEntropy ce(&tp_comm, /*vocab=*/50257, /*vocab_begin=*/wte->row_begin());
//   ASSIGN_OR_RETURN(double loss, ce.Forward(local_logits, targets));  // [B*T, 50304 / tp]
//   RETURN_IF_ERROR(ce.Backward(/*dloss=*/1.0));                       // now dL/dlogits
//
// Not thread-safe; Forward is a collective over the group (two all-reduces).
#ifndef USINE_RUNTIME_NN_VOCAB_PARALLEL_CROSS_ENTROPY_H_
#define USINE_RUNTIME_NN_VOCAB_PARALLEL_CROSS_ENTROPY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/tokens.h"

namespace usine {

class VocabParallelCrossEntropy {
 public:
  // `tp` (null: a group of one) must outlive this object. vocab: the number of classes of the
  // whole vocabulary; vocab_begin: the class of this rank's first logit column.
  VocabParallelCrossEntropy(Communicator* tp, int64_t vocab, int64_t vocab_begin)
      : tp_(tp), vocab_(vocab), vocab_begin_(vocab_begin) {}

  // The mean loss over rows. logits: this rank's slice [N, local columns], f32 or f64 on the
  // cpu or f32 or bf16 (computed on in f32) on a CUDA device (the group's); targets: a window of N
  // ids < vocab, the same on every rank. Keeps `logits` (a handle) for Backward. On CUDA the
  // per-row statistics are made on the device and the loss on the host (synchronous).
  [[nodiscard]] absl::StatusOr<double> Forward(const Tensor& logits, const TokenWindow& targets);
  // Overwrites the logits given to Forward with d(dloss * loss)/dlogits (this rank's columns).
  // REQUIRES: Forward since the last Backward.
  [[nodiscard]] absl::Status Backward(double dloss);
  // Forward, then the gradient of the loss written to `gradient`, the counterpart of
  // SoftmaxCrossEntropy::ForwardWithGradient (a collective): the logits themselves (in place),
  // or on CUDA another bf16 (for f32 logits, or f32) tensor of their shape
  // (ProductOperandBuffer(logits)).
  [[nodiscard]] absl::StatusOr<double> ForwardWithGradient(const Tensor& logits,
                                                           const TokenWindow& targets,
                                                           const Tensor& gradient);
  // Drops what Forward kept (the logits' handle), with no Backward.
  void Release() { saved_.reset(); }

 private:
  Communicator* tp_;
  int64_t vocab_;
  int64_t vocab_begin_;
  // gradient <- d(dloss * loss)/dlogits from what Forward saved, which it drops. REQUIRES:
  // saved_.
  absl::Status WriteGradient(double dloss, const Tensor& gradient);

  struct Saved {
    Tensor logits;
    Tensor lse;  // Per row log-sum-exp over the whole vocabulary, on the logits' device.
    std::vector<int32_t> targets;
    Tensor device_targets;  // On CUDA: the targets on the device; else undefined.
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_VOCAB_PARALLEL_CROSS_ENTROPY_H_
