#include "runtime/nn/gpt_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {

absl::StatusOr<GptDecoder> GptDecoder::Create(Gpt& model, int64_t batch) {
  if (batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("GptDecoder: batch ", batch, " (expected >= 1)"));
  }
  std::vector<AttentionCache> caches;
  caches.reserve(model.h_.size());
  for (const auto& block : model.h_) {
    ASSIGN_OR_RETURN(AttentionCache cache, block->CreateCache(batch, model.config().block_size));
    caches.push_back(std::move(cache));
  }
  return GptDecoder(model, batch, std::move(caches));
}

absl::StatusOr<Tensor> GptDecoder::Append(const Tensor& tokens) {
  const int64_t block_size = model_->config().block_size;
  if (tokens.rank() != 2 || tokens.dim(0) != batch_ || tokens.dim(1) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("GptDecoder::Append tokens: expected [", batch_,
                                                   ", Tn >= 1], got ", tokens.DebugString()));
  }
  if (length_ + tokens.dim(1) > block_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("GptDecoder::Append: ", tokens.dim(1), " more tokens after ", length_,
                     " exceed the block size ", block_size, " (the positions wpe has)"));
  }
  absl::StatusOr<Tensor> logits = Forward(tokens);
  model_->ReleaseActivations();  // Inference: nothing is kept for a Backward.
  if (!logits.ok()) {
    for (AttentionCache& cache : caches_) cache.length = length_;  // Forgets this call's positions.
    return logits.status();
  }
  length_ += tokens.dim(1);
  return logits;
}

absl::StatusOr<Tensor> GptDecoder::Forward(const Tensor& tokens) {
  Gpt& m = *model_;
  const int64_t fresh = tokens.dim(1);
  ASSIGN_OR_RETURN(Tensor x, m.EmbedTokens({tokens, 0, fresh}));
  RETURN_IF_ERROR(m.wpe_->Forward(x, /*first=*/length_));
  for (size_t i = 0; i < m.h_.size(); ++i) {
    ASSIGN_OR_RETURN(x, m.h_[i]->ForwardCached(x, caches_[i]));
  }
  ASSIGN_OR_RETURN(x, m.ln_f_->Forward(x));
  ASSIGN_OR_RETURN(const Tensor hidden, x.Reshape({batch_ * fresh, m.config().n_embd}));
  return m.LastPositionLogits(hidden, batch_, fresh);
}

}  // namespace usine
