#include "runtime/train/hf_gpt2_export.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/safetensors_writer.h"
#include "checkpoint/state_dict.h"
#include "nlohmann/json.hpp"
#include "runtime/core/atomic_file.h"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/train/internal/hf_gpt2_layout.h"

namespace usine {
namespace {

namespace fs = std::filesystem;
using train_internal::IsConv1dWeight;
using train_internal::kHfPrefix;
using train_internal::TransposeConv1dWeight;

// A model tensor and how Hugging Face stores it.
struct Exported {
  std::string name;  // usine's.
  Tensor value;      // Whole, f32, on the cpu.
  SafetensorsSpec spec;
};

// `e`'s value laid out as its spec says: transposed, wte's padding rows dropped, cast.
absl::StatusOr<Tensor> AsStored(const Exported& e) {
  const float* in = static_cast<const float*>(e.value.raw_data());
  Tensor f32;
  if (IsConv1dWeight(e.name)) {
    ASSIGN_OR_RETURN(f32, Tensor::Empty(e.spec.shape, DType::kF32));
    TransposeConv1dWeight(in, e.value.dim(0), e.value.dim(1), static_cast<float*>(f32.raw_data()));
  } else {  // The leading rows (all of them but for wte), a view.
    ASSIGN_OR_RETURN(
        f32, Tensor::Wrap(const_cast<float*>(in), e.spec.shape, DType::kF32, Device::Cpu()));
  }
  if (e.spec.dtype == DType::kF32) return f32;
  ASSIGN_OR_RETURN(Tensor cast, Tensor::Empty(e.spec.shape, e.spec.dtype));
  RETURN_IF_ERROR(Cast(f32, cast));
  return cast;
}

absl::StatusOr<std::vector<Exported>> ExportedTensors(Gpt& model, DType dtype) {
  StateDict state;
  RETURN_IF_ERROR(model.AddToStateDict(state));
  std::vector<Exported> out;
  for (const auto& [name, entry] : state.tensors()) {
    const Tensor& value = entry.pieces.front().tensor;
    if (!entry.whole() || !value.device().is_cpu() || value.dtype() != DType::kF32) {
      return absl::InvalidArgumentError(
          absl::StrCat("the model's '", name, "' is ", value.DebugString(), " of ",
                       entry.global_shape.ToString(),
                       ": export a model whose f32 weights are whole on the cpu (no tensor "
                       "parallelism)"));
    }
    std::vector<int64_t> dims(entry.global_shape.dims().begin(), entry.global_shape.dims().end());
    if (IsConv1dWeight(name)) std::swap(dims[0], dims[1]);
    if (name == "wte.weight") dims[0] = model.config().vocab_size;
    out.push_back({name, value, {absl::StrCat(kHfPrefix, name), dtype, Shape(dims)}});
  }
  return out;
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(const std::string bytes, ReadFile(from));
  return WriteFileAtomically(to, {bytes});
}

absl::Status WriteDirectory(Gpt& model, const std::string& dir, const HfGpt2ExportOptions& options,
                            const std::vector<Exported>& tensors) {
  std::vector<SafetensorsSpec> specs;
  specs.reserve(tensors.size());
  for (const Exported& e : tensors) specs.push_back(e.spec);
  RETURN_IF_ERROR(WriteSafetensorsFile(dir + "/model.safetensors", specs,
                                       [&tensors](size_t i) { return AsStored(tensors[i]); },
                                       {{"format", "pt"}}));
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/config.json",
                                      {HuggingFaceGpt2Config(model.config(), options.dtype)}));
  if (options.encoder_json.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CopyFile(options.encoder_json, dir + "/vocab.json"));
  return CopyFile(options.vocab_bpe, dir + "/merges.txt");
}

}  // namespace

std::string HuggingFaceGpt2Config(const GptConfig& config, DType dtype) {
  const nlohmann::ordered_json json = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", config.vocab_size},
      {"n_positions", config.block_size},
      {"n_ctx", config.block_size},
      {"n_embd", config.n_embd},
      {"n_layer", config.n_layer},
      {"n_head", config.n_head},
      {"n_inner", nullptr},
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", 1e-5},
      {"tie_word_embeddings", true},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"torch_dtype", dtype == DType::kBF16 ? "bfloat16" : "float32"},
  };
  return json.dump(2) + "\n";
}

absl::StatusOr<HfGpt2Export> ExportHuggingFaceGpt2(Gpt& model, const std::string& out,
                                                   const HfGpt2ExportOptions& options) {
  if (options.dtype != DType::kF32 && options.dtype != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("export writes f32 or bf16 weights, not ", DTypeName(options.dtype)));
  }
  if (options.encoder_json.empty() != options.vocab_bpe.empty()) {
    return absl::InvalidArgumentError(
        "the tokenizer's files go together: encoder.json and vocab.bpe, or neither");
  }
  // Without a trailing slash, so that the directory's parent is the one synced after the rename.
  const std::string dir = fs::path(out).lexically_normal().string();
  const std::string target =
      absl::EndsWith(dir, "/") && dir.size() > 1 ? dir.substr(0, dir.size() - 1) : dir;
  std::error_code error;
  if (fs::exists(target, error)) {
    return absl::AlreadyExistsError(absl::StrCat(target, " exists; name a new directory"));
  }
  ASSIGN_OR_RETURN(const std::vector<Exported> tensors, ExportedTensors(model, options.dtype));

  const std::string temporary = absl::StrCat(target, ".tmp.", ::getpid());
  fs::remove_all(temporary, error);  // A leftover of this pid's, from an earlier failure.
  fs::create_directories(temporary, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("creating directory ", temporary, ": ", error.message()));
  }
  absl::Status written = WriteDirectory(model, temporary, options, tensors);
  if (written.ok()) {
    fs::rename(temporary, target, error);
    if (error) {
      written = absl::InternalError(
          absl::StrCat("renaming ", temporary, " to ", target, ": ", error.message()));
    }
  }
  if (!written.ok()) {
    fs::remove_all(temporary, error);  // Nothing partial is left behind.
    return written;
  }
  RETURN_IF_ERROR(SyncDirectoryOf(target));

  HfGpt2Export result;
  result.tokenizer = !options.encoder_json.empty();
  for (const Exported& e : tensors) {
    result.tensors += 1;
    result.bytes += e.spec.shape.numel() * static_cast<int64_t>(DTypeSize(options.dtype));
  }
  return result;
}

}  // namespace usine
