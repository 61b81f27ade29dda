#include "runtime/nn/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
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
  std::mt19937_64 rng(options.seed);
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int64_t length =
        std::min<int64_t>(static_cast<int64_t>(tokens.size()), config.block_size);
    ASSIGN_OR_RETURN(Tensor context, Tensor::Empty({1, length}, DType::kI32));
    std::memcpy(context.raw_data(), tokens.data() + tokens.size() - length,
                static_cast<size_t>(length) * sizeof(int32_t));
    ASSIGN_OR_RETURN(const Tensor logits, model.NextTokenLogits(context));
    ASSIGN_OR_RETURN(const int32_t token,
                     DrawToken(FirstRow(logits), options.temperature, options.top_k, rng));
    tokens.push_back(token);
    if (options.stop_token == token) break;
  }
  return std::vector<int32_t>(tokens.begin() + static_cast<ptrdiff_t>(prompt.size()), tokens.end());
}

}  // namespace usine
