// The shape of a GPT-2 model, with presets: "tiny" (tests), "gpt2" (124M), "gpt2-medium"
// (350M), "gpt2-large" (774M), "gpt2-xl" (1558M). The vocabulary is padded to a multiple of
// 128 (GPT-2's 50257 -> 50304) for faster matrix products; the padding rows are never
// predicted.
//
//   ASSIGN_OR_RETURN(GptConfig config, GptConfigNamed("gpt2"));
//   config.block_size = 512;          // fields may be changed; Gpt::Create validates them
//   state.SetJson("model_config", GptConfigToJson(config));   // what a checkpoint records
//   ASSIGN_OR_RETURN(GptConfig same, GptConfigFromJson(GptConfigToJson(config)));
#ifndef USINE_RUNTIME_NN_GPT_CONFIG_H_
#define USINE_RUNTIME_NN_GPT_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace usine {

struct GptConfig {
  std::string name;
  int64_t vocab_size = 0;  // Token ids are in [0, vocab_size).
  int64_t block_size = 0;  // The longest sequence (rows of wpe).
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_embd = 0;  // REQUIRES: a multiple of n_head.

  // vocab_size rounded up to a multiple of 128: the rows of wte and the columns of the logits.
  int64_t padded_vocab() const { return (vocab_size + 127) / 128 * 128; }

  // OK when every field is positive and n_head divides n_embd; otherwise InvalidArgument
  // naming the field and the config.
  [[nodiscard]] absl::Status Validate() const;
};

// The presets: "tiny" is vocab 500, block 64, 2 layers, 4 heads, 32 wide (for tests); the
// others are GPT-2's (vocab 50257, block 1024). An unknown name is InvalidArgument listing them.
[[nodiscard]] absl::StatusOr<GptConfig> GptConfigNamed(absl::string_view name);

// The config as one JSON object: {"name", "vocab_size", "block_size", "n_layer", "n_head",
// "n_embd", "padded_vocab"} -- what checkpoints record as "model_config"
// (scripts/export_to_torch.py reads it; padded_vocab is derived, for readers of the file).
std::string GptConfigToJson(const GptConfig& config);

// The config that GptConfigToJson wrote: the six fields are required, padded_vocab may be
// absent but must otherwise be the config's, other keys are ignored. Does not Validate().
// Errors (InvalidArgument) name the field.
[[nodiscard]] absl::StatusOr<GptConfig> GptConfigFromJson(absl::string_view json);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_GPT_CONFIG_H_
