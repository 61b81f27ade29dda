// Text continuation with a Gpt: tokens drawn one at a time after a prompt, each from the
// model's next-token logits by DrawToken (token_draw.h).
//
//   const std::vector<int32_t> ids = tokenizer->Encode("Once upon a time");
//   ASSIGN_OR_RETURN(std::vector<int32_t> more,
//                    Sample(*model, ids, {.max_new_tokens = 100, .temperature = 0.8,
//                                         .top_k = 40, .seed = 7, .stop_token = 50256}));
//   // Four at once (seeds 7 to 10), one forward pass over the four per token:
//   ASSIGN_OR_RETURN(std::vector<std::vector<int32_t>> four, SampleMany(*model, ids, options, 4));
//
// The logits are those of the context, the last block_size tokens of the prompt and of the
// tokens drawn so far. While the whole context fits in block_size they come from a GptDecoder
// (gpt_decoder.h): the prompt costs one forward pass and each drawn token one position's work.
// Once it does not (the context then drops its first token at every step, which no cache of
// earlier positions can follow), or where the model's device has no cached kernel for its heads
// (CUDA, heads over 256 wide), each token costs a forward pass over the context
// (Gpt::NextTokenLogits). Both give the same logits up to the order of floating-point sums
// (on CUDA under bf16 products with the flash kernel, up to its rounding of the probabilities
// to bf16 too), so a seed draws the tokens it drew before the cache was added, but for near
// ties.
//
// With tensor parallelism Sample is a collective over the model's TP group (the logits are
// gathered from it) and every rank of the group must call it with the same prompt and
// options; every rank then returns the same tokens (the gathered logits are the same bits on
// every rank, and so is the seeded engine). Thread-compatible; the model must not be used by
// another thread meanwhile.
#ifndef USINE_RUNTIME_NN_SAMPLER_H_
#define USINE_RUNTIME_NN_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "runtime/nn/gpt.h"

namespace usine {

struct SampleOptions {
  int64_t max_new_tokens = 64;  // Tokens to draw at most, >= 0. Default: 64.
  double temperature = 1.0;     // >= 0; 0: greedy (the argmax). Default: 1.
  int64_t top_k = 0;            // >= 0; draws among the k likeliest ids; 0: every id.
  uint64_t seed = 0;            // Of the std::mt19937_64 the draws take their variates from.
  // Drawing this id (< vocab_size) ends the continuation. Default: none.
  std::optional<int32_t> stop_token = std::nullopt;
};

// The tokens drawn after `prompt`: max_new_tokens of them, or fewer ending with the stop
// token. Errors (InvalidArgument, before any forward pass): an empty prompt, an id of the
// prompt outside [0, vocab_size) (naming its position), options out of range; and those of
// the model's forward pass.
[[nodiscard]] absl::StatusOr<std::vector<int32_t>> Sample(Gpt& model,
                                                          absl::Span<const int32_t> prompt,
                                                          const SampleOptions& options);

// `count` continuations of `prompt`, computed together: the b-th is what Sample draws with
// seed options.seed + b (up to the order of floating-point sums), but each step is one
// forward pass over the `count` sequences. Once a sequence has drawn the stop token, it is
// fed that token again while the others go on, and those steps' draws are dropped. On the
// cpu the decoder's caches take `count` times one sequence's memory (gpt_decoder.h). Errors:
// Sample's, and count < 1 (InvalidArgument).
[[nodiscard]] absl::StatusOr<std::vector<std::vector<int32_t>>> SampleMany(
    Gpt& model, absl::Span<const int32_t> prompt, const SampleOptions& options, int64_t count);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SAMPLER_H_
