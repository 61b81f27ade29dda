// One draw of the next token from a row of logits: softmax(logits / temperature) restricted to
// the top_k largest logits, or the argmax. The step of sampling (sampler.h) that holds the
// randomness, kept apart so that it can be tested without a model.
//
//   std::mt19937_64 rng(seed);
//   ASSIGN_OR_RETURN(int32_t id, DrawToken(row, /*temperature=*/0.8, /*top_k=*/40, rng));
//
// Determinism: the token is a function of the logits' values, the two parameters and the
// engine's state alone (the uniform variate is built from the engine's bits, not by
// std::uniform_real_distribution, whose output the standard leaves to the library), so
// ranks that hold the same logits and engines draw the same tokens. Thread-compatible.
#ifndef USINE_RUNTIME_NN_TOKEN_DRAW_H_
#define USINE_RUNTIME_NN_TOKEN_DRAW_H_

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace usine {

// The id of the drawn token, in [0, logits.size()).
// - temperature 0 or top_k 1: the argmax (the lowest id among equal maxima); `rng` is unused.
// - otherwise: the candidates are the top_k largest logits (ties broken towards lower ids;
//   top_k 0 or >= logits.size(): every id), and id i among them is drawn with probability
//   exp(logits[i] / temperature) / sum over the candidates; one variate is taken from `rng`.
// Errors (InvalidArgument): empty logits, a logit that is not finite (naming its id), a
// negative or non-finite temperature, a negative top_k.
[[nodiscard]] absl::StatusOr<int32_t> DrawToken(absl::Span<const double> logits, double temperature,
                                                int64_t top_k, std::mt19937_64& rng);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_TOKEN_DRAW_H_
