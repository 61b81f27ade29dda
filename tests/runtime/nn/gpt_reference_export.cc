// For the PyTorch cross-check (gpt_reference_e2e_test.sh): builds the tiny GPT in f32 or f64,
// moves every parameter off GPT-2's initialisation (so that no bias is zero and no LayerNorm
// weight is one), runs Forward and Backward on one batch and writes, as a usine checkpoint
// file that h5py reads:
//
//   tensors/model/<name>   the parameters          tensors/grad/<name>   their gradients
//   tensors/batch/tokens   i32 [B, T+1]            metadata/loss         the loss (double)
//   metadata/model_config  the GptConfig as JSON   tensors/logits        Gpt::Logits of the inputs
//   metadata/step          0 (what `usine export` reads besides the model)
//
//   gpt_reference_export OUT.h5 f32|f64
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/checkpoint_file.h"
#include "collectives/local/local_communicator.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/gpt.h"

namespace usine {
namespace {

constexpr int64_t kBatch = 3;
constexpr int64_t kSeq = 16;

// A deterministic value in [-1, 1) for element i of parameter p.
double Wiggle(size_t p, int64_t i) {
  return std::sin(static_cast<double>(i) * 12.9898 + static_cast<double>(p) * 78.233);
}

template <typename T>
void Perturb(Gpt& model, int64_t vocab) {
  std::vector<NamedParameter> params = model.Parameters();
  for (size_t p = 0; p < params.size(); ++p) {
    const Tensor& value = params[p].parameter->value;
    T* v = static_cast<T*>(value.raw_data());
    // wte's padding rows stay zero, as the model keeps them.
    const int64_t n = params[p].name == "wte.weight" ? vocab * value.dim(1) : value.numel();
    for (int64_t i = 0; i < n; ++i) v[i] += static_cast<T>(0.1 * Wiggle(p, i));
  }
}

absl::Status Export(const std::string& path, DType dtype) {
  ASSIGN_OR_RETURN(GptConfig config, GptConfigNamed("tiny"));
  ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = config, .seed = 3, .dtype = dtype}));
  if (dtype == DType::kF64) {
    Perturb<double>(*model, config.vocab_size);
  } else {
    Perturb<float>(*model, config.vocab_size);
  }
  ASSIGN_OR_RETURN(Tensor tokens, Tensor::Empty({kBatch, kSeq + 1}, DType::kI32));
  int32_t* ids = static_cast<int32_t*>(tokens.raw_data());
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    ids[i] = static_cast<int32_t>((i * 7919 + 13) % config.vocab_size);
  }
  ASSIGN_OR_RETURN(double loss, model->Forward(tokens));
  RETURN_IF_ERROR(model->Backward());

  StateDict state;
  RETURN_IF_ERROR(model->AddToStateDict(state, "model/"));
  for (const NamedParameter& p : model->Parameters()) {
    RETURN_IF_ERROR(state.AddTensor(absl::StrCat("grad/", p.name), p.parameter->grad));
  }
  RETURN_IF_ERROR(state.AddTensor("batch/tokens", tokens));
  state.SetDouble("loss", loss);
  // As `usine train` writes it (scripts/export_to_torch.py reads it).
  state.SetJson("model_config",
                absl::StrCat(R"({"name": "tiny", "vocab_size": )", config.vocab_size,
                             R"(, "block_size": )", config.block_size, R"(, "n_layer": )",
                             config.n_layer, R"(, "n_head": )", config.n_head, R"(, "n_embd": )",
                             config.n_embd, R"(, "padded_vocab": )", config.padded_vocab(), "}"));
  state.SetInt("step", 0);
  // The logits of the batch's inputs, for the check of the PyTorch export.
  ASSIGN_OR_RETURN(Tensor inputs, Tensor::Empty({kBatch, kSeq}, DType::kI32));
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t t = 0; t < kSeq; ++t) {
      static_cast<int32_t*>(inputs.raw_data())[b * kSeq + t] = ids[b * (kSeq + 1) + t];
    }
  }
  ASSIGN_OR_RETURN(Tensor logits, model->Logits(inputs));
  RETURN_IF_ERROR(state.AddTensor("logits", logits));
  LocalCommunicator comm("export");
  RETURN_IF_ERROR(WriteCheckpointFile(path, state, comm));
  std::printf("usine %s loss %.17g, %zu parameters -> %s\n", std::string(DTypeName(dtype)).c_str(),
              loss, model->Parameters().size(), path.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace usine

int main(int argc, char** argv) {
  const std::string dtype = argc == 3 ? argv[2] : "";
  if (dtype != "f32" && dtype != "f64") {
    std::fprintf(stderr, "usage: %s OUT.h5 f32|f64\n", argv[0]);
    return 2;
  }
  const absl::Status status =
      usine::Export(argv[1], dtype == "f64" ? usine::DType::kF64 : usine::DType::kF32);
  if (!status.ok()) {
    std::fprintf(stderr, "gpt_reference_export: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
