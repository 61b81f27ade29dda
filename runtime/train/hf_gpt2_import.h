// A GPT-2 model in Hugging Face's layout (the directory that `save_pretrained` writes and the Hub
// serves: config.json and model.safetensors) as a usine checkpoint file, so that a pretrained
// model can be fine-tuned (`usine finetune --from`, checkpoint.init_from), sampled and evaluated
// (`usine sample`, `usine eval`). The inverse of scripts/export_to_torch.py.
//
//   ASSIGN_OR_RETURN(HfGpt2Import imported, ImportHuggingFaceGpt2("hf/gpt2", "gpt2.h5"));
//   // gpt2.h5: model/<GPT-2 names>, model_config, step 0
//
// The mapping: the tensors' names are usine's without the "transformer." prefix that a
// GPT2LMHeadModel's keys may carry; the Conv1D weights ([in, out]: attn.c_attn, attn.c_proj,
// mlp.c_fc, mlp.c_proj) are transposed to usine's [out, in]; wte gets usine's padded vocabulary,
// the padding rows zero. The attention's mask buffers (attn.bias, attn.masked_bias) are not
// weights and are skipped, as is an lm_head.weight equal to wte (GPT-2 ties them). F16, BF16 and
// F64 weights are converted to f32. Anything else is an error naming the file and the tensor:
// a missing weight, a shape that is not the config's, an unknown tensor, an untied lm_head.
#ifndef USINE_RUNTIME_TRAIN_HF_GPT2_IMPORT_H_
#define USINE_RUNTIME_TRAIN_HF_GPT2_IMPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/nn/gpt_config.h"

namespace usine {

// The GptConfig of a Hugging Face GPT2Config's JSON (`what` names it in errors): n_layer,
// n_head, n_embd, n_positions and vocab_size, each GPT2Config's default when absent (12, 12,
// 768, 1024, 50257). Named after the preset of the same shape ("gpt2", ..., "tiny"; gpt_config.h),
// else "hf-gpt2". InvalidArgument for text that is not a JSON object, a field of the wrong type, or
// a model that usine's GPT-2 does not compute: a model_type other than "gpt2", an
// activation_function other than the tanh GELU ("gelu_new", "gelu_pytorch_tanh"), a
// layer_norm_epsilon other than 1e-5, an n_inner other than 4 n_embd, untied embeddings,
// unscaled or layer-scaled attention, cross-attention.
[[nodiscard]] absl::StatusOr<GptConfig> GptConfigFromHuggingFace(absl::string_view json,
                                                                 absl::string_view what);

struct HfGpt2Import {
  GptConfig config;
  std::string weights;               // The safetensors file read.
  int64_t tensors = 0;               // Written to the checkpoint.
  int64_t bytes = 0;                 // Their bytes.
  std::vector<std::string> skipped;  // The file's tensors left out (buffers, a tied lm_head).
};

// Writes the checkpoint file `out` (docs/checkpoint-format.md: "model/" tensors, model_config,
// step 0, tokens_seen 0, and "imported_from", the weights' path) from `model`: a directory with
// config.json and model.safetensors, or a .safetensors file with config.json beside it. The
// file appears whole or not at all (written beside it, then renamed). AlreadyExists when `out`
// exists; NotFound for a missing config.json or weights file (naming pytorch_model.bin's
// conversion, scripts/torch_to_safetensors.py, where that is what the directory has); the
// config's errors (above), the safetensors file's (checkpoint/safetensors_file.h) and the
// mapping's (above); the write's. One process: no MPI, HDF5 called from this thread.
[[nodiscard]] absl::StatusOr<HfGpt2Import> ImportHuggingFaceGpt2(const std::string& model,
                                                                 const std::string& out);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_HF_GPT2_IMPORT_H_
