// Where Hugging Face's GPT-2 (GPT2LMHeadModel) names and lays out usine's GPT-2 tensors
// differently, for the import and the export (hf_gpt2_import.h, hf_gpt2_export.h).
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_NAMES_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_NAMES_H_

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace usine::train_internal {

// What save_pretrained puts before usine's names ("transformer.h.0.ln_1.weight").
inline constexpr char kHfPrefix[] = "transformer.";

// Whether usine's tensor `name` ("h.3.mlp.c_fc.weight") is a linear layer's weight that
// Hugging Face stores as a Conv1D's, [in, out]: usine's [out, in] transposed.
inline bool IsConv1dWeight(absl::string_view name) {
  for (const char* suffix :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    if (absl::EndsWith(name, suffix)) return true;
  }
  return false;
}

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_NAMES_H_
