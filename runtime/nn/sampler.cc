#include "runtime/nn/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/gpt_decoder.h"
#include "runtime/nn/token_draw.h"

namespace usine {
namespace {

absl::Status Validate(const GptConfig& config, absl::Span<const int32_t> prompt,
                      const SampleOptions& o) {
  const auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: ", parts...));
  };
  if (prompt.empty()) return bad("the prompt is empty");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= config.vocab_size) {
      return bad("prompt token ", i, " is ", prompt[i], ", outside the vocabulary [0, ",
                 config.vocab_size, ")");
    }
  }
  if (o.max_new_tokens < 0) return bad("max_new_tokens ", o.max_new_tokens, " (expected >= 0)");
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return bad("temperature ", o.temperature, " (expected a finite value >= 0; 0: greedy)");
  }
  if (o.top_k < 0) return bad("top_k ", o.top_k, " (expected >= 0; 0: every id)");
  if (o.stop_token && (*o.stop_token < 0 || *o.stop_token >= config.vocab_size)) {
    return bad("stop_token ", *o.stop_token, ", outside the vocabulary [0, ", config.vocab_size,
               ")");
  }
  return absl::OkStatus();
}

// tokens as a [1, T] i32 tensor.
absl::StatusOr<Tensor> TokenRow(absl::Span<const int32_t> tokens) {
  ASSIGN_OR_RETURN(Tensor row,
                   Tensor::Empty({1, static_cast<int64_t>(tokens.size())}, DType::kI32));
  std::memcpy(row.raw_data(), tokens.data(), tokens.size() * sizeof(int32_t));
  return row;
}

// The next-token logits after `tokens` ([1, vocab_size]): from `decoder` (appending the tokens
// it lacks) while they fit in the block, else from a forward pass over the last block_size.
absl::StatusOr<Tensor> LogitsAfter(Gpt& model, GptDecoder* decoder,
                                   absl::Span<const int32_t> tokens) {
  const int64_t block_size = model.config().block_size;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (decoder != nullptr && n <= block_size) {
    ASSIGN_OR_RETURN(const Tensor fresh, TokenRow(tokens.subspan(decoder->length())));
    return decoder->Append(fresh);
  }
  ASSIGN_OR_RETURN(const Tensor context,
                   TokenRow(tokens.subspan(std::max<int64_t>(0, n - block_size))));
  return model.NextTokenLogits(context);
}

// Row 0 of `logits` ([1, V], f32 or f64, host) in double.
std::vector<double> FirstRow(const Tensor& logits) {
  const int64_t v = logits.dim(1);
  std::vector<double> row(static_cast<size_t>(v));
  if (logits.dtype() == DType::kF64) {
    std::memcpy(row.data(), logits.raw_data(), row.size() * sizeof(double));
  } else {
    const float* f = static_cast<const float*>(logits.raw_data());
    std::copy(f, f + v, row.begin());
  }
  return row;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> Sample(Gpt& model, absl::Span<const int32_t> prompt,
                                            const SampleOptions& options) {
  const GptConfig& config = model.config();
  RETURN_IF_ERROR(Validate(config, prompt, options));
  std::vector<int32_t> tokens(prompt.begin(), prompt.end());  // The prompt, then the drawn.
  std::optional<GptDecoder> decoder;                          // gpt_decoder.h: cpu models only.
  if (model.device().is_cpu() && static_cast<int64_t>(prompt.size()) <= config.block_size) {
    ASSIGN_OR_RETURN(decoder, GptDecoder::Create(model));
  }
  std::mt19937_64 rng(options.seed);
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    ASSIGN_OR_RETURN(const Tensor logits,
                     LogitsAfter(model, decoder ? &*decoder : nullptr, tokens));
    ASSIGN_OR_RETURN(const int32_t token,
                     DrawToken(FirstRow(logits), options.temperature, options.top_k, rng));
    tokens.push_back(token);
    if (options.stop_token == token) break;
  }
  return std::vector<int32_t>(tokens.begin() + static_cast<ptrdiff_t>(prompt.size()), tokens.end());
}

}  // namespace usine
