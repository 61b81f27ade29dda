// Where Hugging Face's GPT-2 (GPT2LMHeadModel) names and lays out usine's GPT-2 tensors
// differently, for the import and the export (hf_gpt2_import.h, hf_gpt2_export.h).
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_LAYOUT_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_LAYOUT_H_

#include <algorithm>
#include <cstdint>

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

// A Conv1D weight between the two layouts: `in` [rows, cols] row-major to `out` [cols, rows],
// in tiles that keep both sides in cache (a GPT-2 XL weight is 1600 x 6400).
inline void TransposeConv1dWeight(const float* in, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
          out[c * rows + r] = in[r * cols + c];
        }
      }
    }
  }
}

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_HF_GPT2_LAYOUT_H_
