// Softmax cross-entropy over logits [N, padded_vocab], mean over the N rows, fused with its
// gradient: the columns >= vocab are padding that is never predicted (no probability, zero
// gradient), and Backward writes the gradient over the logits in place (one buffer for both,
// as the vocabulary-sized tensor is a model's largest). No parameters.
//
//   SoftmaxCrossEntropy ce(/*vocab=*/50257);
//   ASSIGN_OR_RETURN(double loss, ce.Forward(logits, targets));  // logits [B*T, 50304]
//   RETURN_IF_ERROR(ce.Backward(/*dloss=*/1.0));                 // logits now hold dL/dlogits
//
// A model whose loss is its last operation can take the gradient in the forward pass instead,
// one pass over the logits fewer, and apply its dloss where it reads the gradient:
//
//   ASSIGN_OR_RETURN(double loss, ce.ForwardWithGradient(logits, targets, logits));
//   ... Backward(dloss): Matmul(logits, x, dw, {.transpose_a = true, .alpha = dloss}) ...
//
// Not thread-safe.
#ifndef USINE_RUNTIME_NN_CROSS_ENTROPY_H_
#define USINE_RUNTIME_NN_CROSS_ENTROPY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/tokens.h"

namespace usine {

class SoftmaxCrossEntropy {
 public:
  explicit SoftmaxCrossEntropy(int64_t vocab) : vocab_(vocab) {}

  // The mean loss over rows. logits: [N, padded_vocab >= vocab], f32 or f64 on the cpu or f32
  // or bf16 (computed on in f32) on a CUDA device (then the call waits for the device: the loss
  // comes back to the host);
  // targets: a window of B * length = N ids on the cpu, each < vocab. Keeps `logits` (a
  // handle) for Backward.
  [[nodiscard]] absl::StatusOr<double> Forward(const Tensor& logits, const TokenWindow& targets);
  // Overwrites the logits given to Forward with d(dloss * loss)/dlogits.
  // REQUIRES: Forward since the last Backward.
  [[nodiscard]] absl::Status Backward(double dloss);
  // Forward's loss (the same value), with its gradient d(loss)/dlogits (dloss = 1, the mean's)
  // written to `gradient` at once: the logits themselves (in place), or a tensor of their shape
  // on their device, in their dtype or (CUDA) bf16 — ProductOperandBuffer(logits) (matmul.h),
  // so that the products of the backward pass read it as it is. On the cpu each exponential is
  // computed once, not again by Backward; on CUDA the logits are read once fewer. Keeps
  // nothing: no Backward follows.
  [[nodiscard]] absl::StatusOr<double> ForwardWithGradient(const Tensor& logits,
                                                           const TokenWindow& targets,
                                                           const Tensor& gradient);
  // Drops what Forward kept (the logits' handle), with no Backward.
  void Release() { saved_.reset(); }

 private:
  // Forward's checks of its arguments; returns the target ids.
  absl::StatusOr<std::vector<int32_t>> CheckedTargets(const Tensor& logits,
                                                      const TokenWindow& targets) const;

  int64_t vocab_;
  struct Saved {
    Tensor logits;
    Tensor lse;  // Per row log-sum-exp.
    std::vector<int32_t> targets;
    Tensor device_targets;  // i32 [N] on the logits' CUDA device; undefined on the cpu.
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_CROSS_ENTROPY_H_
