#include "runtime/nn/gpt_config.h"

#include "absl/strings/str_cat.h"

namespace usine {

absl::Status GptConfig::Validate() const {
  for (auto [field, value] : {std::pair<const char*, int64_t>{"vocab_size", vocab_size},
                              {"block_size", block_size},
                              {"n_layer", n_layer},
                              {"n_head", n_head},
                              {"n_embd", n_embd}}) {
    if (value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("GptConfig '", name, "': ", field, " must be positive, got ", value));
    }
  }
  if (n_embd % n_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat("GptConfig '", name, "': n_head ", n_head,
                                                   " does not divide n_embd ", n_embd));
  }
  if (vocab_size > int64_t{1} << 31) {
    return absl::InvalidArgumentError(
        absl::StrCat("GptConfig '", name, "': vocab_size ", vocab_size, " exceeds 2^31"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GptConfig> GptConfigNamed(absl::string_view name) {
  constexpr int64_t kGpt2Vocab = 50257, kGpt2Block = 1024;
  if (name == "tiny") return GptConfig{"tiny", 500, 64, 2, 4, 32};
  if (name == "gpt2") return GptConfig{"gpt2", kGpt2Vocab, kGpt2Block, 12, 12, 768};
  if (name == "gpt2-medium") {
    return GptConfig{"gpt2-medium", kGpt2Vocab, kGpt2Block, 24, 16, 1024};
  }
  if (name == "gpt2-large") return GptConfig{"gpt2-large", kGpt2Vocab, kGpt2Block, 36, 20, 1280};
  if (name == "gpt2-xl") return GptConfig{"gpt2-xl", kGpt2Vocab, kGpt2Block, 48, 25, 1600};
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown model '", name, "' (expected tiny, gpt2, gpt2-medium, gpt2-large or gpt2-xl)"));
}

}  // namespace usine
