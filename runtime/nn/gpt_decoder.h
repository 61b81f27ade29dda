// Incremental decoding with a Gpt and a key/value cache: the logits of the next token after each
// chunk of tokens appended, each position's keys and values computed once and kept (one
// AttentionCache per block, attention.h), so that a new token costs one position's work instead
// of a forward pass over the whole context. What Sample uses (sampler.h).
//
//   ASSIGN_OR_RETURN(GptDecoder decoder, GptDecoder::Create(*model));
//   ASSIGN_OR_RETURN(Tensor logits, decoder.Append(prompt));  // prompt [1, T] -> [1, vocab_size]
//   ... draw `next` [1, 1] from logits ...
//   ASSIGN_OR_RETURN(logits, decoder.Append(next));           // one position's work
//
// The logits after a chunk are Gpt::NextTokenLogits of all the tokens appended so far, up to the
// order of floating-point sums. The positions are those of wpe: block_size at most in all;
// beyond, a caller recomputes the last block_size tokens with NextTokenLogits, as Sample does.
//
// On the cpu and on CUDA (cuda_cached_attention.h: one warp per new position and head, heads
// of at most 256), where the caches are in GPU memory and only the logits come to the host.
//
// Tensor parallelism: each rank caches the keys and values of its own heads; Append is a
// collective over the model's TP group that every rank of it calls with the same tokens, and
// every rank gets the same logits, gathered as NextTokenLogits gathers them.
//
// The model outlives the decoder, and its weights stay as they are while the decoder is used
// (its caches hold keys and values computed with them). Append drops the activations a
// Gpt::Forward saved, as Gpt::Logits does. Thread-compatible; the model must not be used by
// another thread meanwhile.
#ifndef USINE_RUNTIME_NN_GPT_DECODER_H_
#define USINE_RUNTIME_NN_GPT_DECODER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/gpt.h"

namespace usine {

class GptDecoder {
 public:
  // A decoder of `batch` sequences, holding no position yet. Its caches take 2 * n_layer *
  // batch * block_size * n_embd / (TP size) elements of the model's dtype, on its device.
  // Errors: batch < 1 (InvalidArgument); CausalSelfAttention::CreateCache's.
  [[nodiscard]] static absl::StatusOr<GptDecoder> Create(Gpt& model, int64_t batch = 1);

  // tokens [B, Tn], u16 or i32 ids < vocab_size on the cpu, Tn >= 1: the next Tn tokens of each
  // sequence -> the logits of the token after the last of them, [B, vocab_size] in the model's
  // dtype on the cpu (the padding columns left out). Errors: InvalidArgument for tokens of
  // another batch or an id outside the vocabulary (naming it), or length() + Tn over
  // block_size (naming it); those of the forward pass. After an error the decoder is as it
  // was before the call.
  [[nodiscard]] absl::StatusOr<Tensor> Append(const Tensor& tokens);

  // The positions of each sequence appended so far.
  int64_t length() const { return length_; }

 private:
  GptDecoder(Gpt& model, int64_t batch, std::vector<AttentionCache> caches)
      : model_(&model), batch_(batch), caches_(std::move(caches)) {}
  // Append's forward pass; the caches may have advanced when it fails.
  absl::StatusOr<Tensor> Forward(const Tensor& tokens);

  Gpt* model_;
  int64_t batch_;
  std::vector<AttentionCache> caches_;  // One per block, in order.
  int64_t length_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_GPT_DECODER_H_
