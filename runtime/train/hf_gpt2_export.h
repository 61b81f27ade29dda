// A usine GPT as a GPT-2 in Hugging Face's layout: the directory that `save_pretrained` writes
// and `from_pretrained` reads, so that a model trained here can be served, shared or evaluated
// by the tools of that ecosystem. The inverse of hf_gpt2_import.h.
//
//   ASSIGN_OR_RETURN(GptCheckpoint loaded, LoadGptCheckpoint(comm, "runs/x/checkpoints"));
//   ASSIGN_OR_RETURN(HfGpt2Export exported,
//                    ExportHuggingFaceGpt2(*loaded.model, "hf/x", {.dtype = DType::kBF16}));
//
// The directory holds:
//  - config.json: HuggingFaceGpt2Config(model's config);
//  - model.safetensors: a GPT2LMHeadModel's weights as save_pretrained writes them, with
//    metadata {"format": "pt"}: usine's names with the "transformer." prefix; the Conv1D
//    weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) transposed from usine's
//    [out, in] to [in, out]; wte with the vocabulary's rows (the padding rows dropped); no
//    lm_head.weight, which is tied to wte. In f32, the model's bits, or in bf16, each weight
//    rounded to nearest, ties to even;
//  - vocab.json and merges.txt when the tokenizer's files are given: Hugging Face's GPT-2
//    tokenizer reads OpenAI's encoder.json and vocab.bpe under these names.
#ifndef USINE_RUNTIME_TRAIN_HF_GPT2_EXPORT_H_
#define USINE_RUNTIME_TRAIN_HF_GPT2_EXPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

#include "runtime/core/dtype.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/gpt_config.h"

namespace usine {

// GPT2Config's JSON for `config` (hf_gpt2_import.h's GptConfigFromHuggingFace reads it back
// to `config`, name aside): model_type "gpt2", architectures ["GPT2LMHeadModel"], the shape
// (vocab_size, n_positions, n_embd, n_layer, n_head), and what usine computes where
// GPT2Config's defaults differ or may change: the tanh GELU ("gelu_new"), layer_norm_epsilon
// 1e-5, n_inner null (4 n_embd), tied embeddings, no dropout (usine trains without), and the
// weights' dtype as torch_dtype ("float32" or "bfloat16").
std::string HuggingFaceGpt2Config(const GptConfig& config, DType dtype);

struct HfGpt2ExportOptions {
  DType dtype = DType::kF32;  // Of the weights written: kF32 or kBF16. Default: f32.
  // The tokenizer's files, copied as vocab.json and merges.txt; both or neither. Default: none.
  std::string encoder_json = {};
  std::string vocab_bpe = {};
};

struct HfGpt2Export {
  int64_t tensors = 0;     // In model.safetensors.
  int64_t bytes = 0;       // Their bytes.
  bool tokenizer = false;  // Whether vocab.json and merges.txt were written.
};

// Writes the directory `out` (above) from `model`, whose weights are whole on the cpu (no
// tensor parallelism: LoadGptCheckpoint's default layout). The directory appears whole or not
// at all: it is written beside `out`, then renamed. Errors: AlreadyExists when `out` exists;
// InvalidArgument for another dtype, one tokenizer file without the other, or a model on
// another device or split over ranks; NotFound for a tokenizer file that cannot be read; the
// writes' (ResourceExhausted when the disk is full). One process: no collective.
[[nodiscard]] absl::StatusOr<HfGpt2Export> ExportHuggingFaceGpt2(
    Gpt& model, const std::string& out, const HfGpt2ExportOptions& options = {});

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_HF_GPT2_EXPORT_H_
