#include "runtime/nn/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
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

// The last `t` tokens of each sequence as a [B, t] i32 tensor.
absl::StatusOr<Tensor> TokenRows(const std::vector<std::vector<int32_t>>& sequences, int64_t t) {
  const int64_t b = static_cast<int64_t>(sequences.size());
  ASSIGN_OR_RETURN(Tensor rows, Tensor::Empty({b, t}, DType::kI32));
  auto* out = static_cast<int32_t*>(rows.raw_data());
  for (const std::vector<int32_t>& s : sequences) {
    out = std::copy(s.end() - t, s.end(), out);
  }
  return rows;
}

// The next-token logits after each sequence ([B, vocab_size]; the sequences have one length
// n): from `decoder` (appending the tokens it lacks) while they fit in the block, else from a
// forward pass over the last block_size.
absl::StatusOr<Tensor> LogitsAfter(Gpt& model, GptDecoder* decoder,
                                   const std::vector<std::vector<int32_t>>& sequences) {
  const int64_t block_size = model.config().block_size;
  const int64_t n = static_cast<int64_t>(sequences.front().size());
  if (decoder != nullptr && n <= block_size) {
    ASSIGN_OR_RETURN(const Tensor fresh, TokenRows(sequences, n - decoder->length()));
    return decoder->Append(fresh);
  }
  ASSIGN_OR_RETURN(const Tensor context, TokenRows(sequences, std::min(n, block_size)));
  return model.NextTokenLogits(context);
}

// Row `b` of `logits` ([B, V], f32 or f64, host) in double.
std::vector<double> Row(const Tensor& logits, int64_t b) {
  const int64_t v = logits.dim(1);
  std::vector<double> row(static_cast<size_t>(v));
  if (logits.dtype() == DType::kF64) {
    std::memcpy(row.data(), static_cast<const double*>(logits.raw_data()) + b * v,
                row.size() * sizeof(double));
  } else {
    const float* f = static_cast<const float*>(logits.raw_data()) + b * v;
    std::copy(f, f + v, row.begin());
  }
  return row;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> Sample(Gpt& model, absl::Span<const int32_t> prompt,
                                            const SampleOptions& options) {
  ASSIGN_OR_RETURN(std::vector<std::vector<int32_t>> drawn, SampleMany(model, prompt, options, 1));
  return std::move(drawn.front());
}

absl::StatusOr<std::vector<std::vector<int32_t>>> SampleMany(Gpt& model,
                                                             absl::Span<const int32_t> prompt,
                                                             const SampleOptions& options,
                                                             int64_t count) {
  const GptConfig& config = model.config();
  RETURN_IF_ERROR(Validate(config, prompt, options));
  if (count < 1) {
    return absl::InvalidArgumentError(absl::StrCat("Sample: count ", count, " (expected >= 1)"));
  }
  const size_t n = static_cast<size_t>(count);
  // Each sequence: the prompt, then what it drew, then (once it drew the stop token) that
  // token again at every step, so that the sequences keep one length for the decoder.
  std::vector<std::vector<int32_t>> sequences(n,
                                              std::vector<int32_t>(prompt.begin(), prompt.end()));
  std::vector<size_t> drawn(n, 0);  // Of each sequence, up to and with its stop token.
  std::vector<bool> stopped(n, false);
  std::vector<std::mt19937_64> rngs;
  for (size_t b = 0; b < n; ++b) rngs.emplace_back(options.seed + b);
  std::optional<GptDecoder> decoder;
  if (static_cast<int64_t>(prompt.size()) <= config.block_size) {
    absl::StatusOr<GptDecoder> made = GptDecoder::Create(model, count);
    absl::Status created = made.status();
    // Under TP, one outcome on every rank: a cache that failed to allocate on one rank must not
    // leave the others in collectives of a decoding step that rank never takes.
    if (model.tp() != nullptr) created = AgreeOnStatus(*model.tp(), created);
    if (created.ok()) {
      decoder = *std::move(made);
    } else if (!absl::IsUnimplemented(created)) {  // CUDA heads over 256: no cache.
      return created;
    }
  }
  for (int64_t i = 0; i < options.max_new_tokens &&
                      std::find(stopped.begin(), stopped.end(), false) != stopped.end();
       ++i) {
    ASSIGN_OR_RETURN(const Tensor logits,
                     LogitsAfter(model, decoder ? &*decoder : nullptr, sequences));
    for (size_t b = 0; b < n; ++b) {
      if (stopped[b]) {
        sequences[b].push_back(sequences[b].back());
        continue;
      }
      ASSIGN_OR_RETURN(const int32_t token, DrawToken(Row(logits, static_cast<int64_t>(b)),
                                                      options.temperature, options.top_k, rngs[b]));
      sequences[b].push_back(token);
      ++drawn[b];
      stopped[b] = options.stop_token == token;
    }
  }
  std::vector<std::vector<int32_t>> out(n);
  for (size_t b = 0; b < n; ++b) {
    const auto first = sequences[b].begin() + static_cast<ptrdiff_t>(prompt.size());
    out[b].assign(first, first + static_cast<ptrdiff_t>(drawn[b]));
  }
  return out;
}

}  // namespace usine
