#include "runtime/train/hf_gpt2_import.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/checkpoint_file.h"
#include "checkpoint/safetensors_file.h"
#include "checkpoint/state_dict.h"
#include "collectives/local/local_communicator.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/gpt.h"
#include "runtime/train/checkpoint_keys.h"
#include "runtime/train/internal/hf_gpt2_layout.h"

namespace usine {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
using train_internal::IsConv1dWeight;
using train_internal::kHfPrefix;
using train_internal::TransposeConv1dWeight;

// Not weights: GPT2Attention's causal-mask buffers, which some checkpoints hold.
bool IsMaskBuffer(absl::string_view name) {
  return absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias");
}

// config[key] as an integer > 0, `fallback` when absent.
absl::StatusOr<int64_t> PositiveField(const Json& config, const char* key, int64_t fallback,
                                      absl::string_view what) {
  const auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
      it->get<uint64_t>() > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", key, " must be a positive integer, got ", it->dump()));
  }
  return it->get<int64_t>();
}

// Whether config[key], when present, is `expected`; else InvalidArgument saying what usine
// computes instead.
absl::Status CheckField(const Json& config, const char* key, const Json& expected,
                        absl::string_view what, absl::string_view why) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null() || *it == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", key, " is ", it->dump(), "; ", why));
}

std::string PresetNameOf(const GptConfig& config) {
  for (const char* name : {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny"}) {
    const absl::StatusOr<GptConfig> preset = GptConfigNamed(name);
    if (preset.ok() && preset->vocab_size == config.vocab_size &&
        preset->block_size == config.block_size && preset->n_layer == config.n_layer &&
        preset->n_head == config.n_head && preset->n_embd == config.n_embd) {
      return name;
    }
  }
  return "hf-gpt2";
}

// The config.json and the safetensors file of `model` (a directory or a .safetensors file).
struct HfFiles {
  std::string config;
  std::string weights;
};
absl::StatusOr<HfFiles> FindFiles(const std::string& model) {
  std::error_code error;
  HfFiles files;
  fs::path dir(model);
  if (fs::is_directory(model, error)) {
    files.weights = (dir / "model.safetensors").string();
  } else {
    files.weights = model;
    dir = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  }
  files.config = (dir / "config.json").string();
  if (!fs::exists(files.weights, error)) {
    const bool pickled = fs::exists(dir / "pytorch_model.bin", error);
    return absl::NotFoundError(absl::StrCat(
        files.weights, " does not exist",
        pickled ? "; the directory has pytorch_model.bin, which scripts/torch_to_safetensors.py "
                  "converts"
                : ""));
  }
  if (!fs::exists(files.config, error)) {
    return absl::NotFoundError(
        absl::StrCat(files.config, " does not exist (the model's GPT2Config, beside its weights)"));
  }
  return files;
}

// The usine tensor `name` (of global shape `shape`) from the file's tensor `hf_name`, as Hugging
// Face lays it out (transposed for a Conv1D weight; wte with `vocab` rows, unpadded), into `to`.
absl::Status FillFrom(const SafetensorsFile& file, const std::string& hf_name,
                      const std::string& name, const Shape& shape, int64_t vocab,
                      const Tensor& to) {
  const bool conv1d = IsConv1dWeight(name);
  std::vector<int64_t> want(shape.dims().begin(), shape.dims().end());
  if (conv1d) std::swap(want[0], want[1]);
  if (name == "wte.weight") want[0] = vocab;
  const Shape& have = file.entries().at(hf_name).shape;
  if (have != Shape(want)) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor '", hf_name, "' is ",
                                                   have.ToString(), "; the config makes it ",
                                                   Shape(want).ToString()));
  }
  ASSIGN_OR_RETURN(const absl::Span<float> out, to.host_span<float>());
  ASSIGN_OR_RETURN(const Tensor in_tensor, file.ReadF32(hf_name));
  ASSIGN_OR_RETURN(const absl::Span<float> in, in_tensor.host_span<float>());
  if (conv1d) {
    TransposeConv1dWeight(in.data(), have.dim(0), have.dim(1), out.data());
  } else {
    std::memcpy(out.data(), in.data(), in.size() * sizeof(float));
    std::fill(out.begin() + static_cast<int64_t>(in.size()), out.end(), 0.0f);  // wte's padding
  }
  return absl::OkStatus();
}

// Whether the file's lm_head.weight is wte.weight's values (GPT-2 ties them).
absl::StatusOr<bool> TiedToWte(const SafetensorsFile& file, const std::string& lm_head,
                               const std::string& wte) {
  if (file.entries().at(lm_head).shape != file.entries().at(wte).shape) return false;
  ASSIGN_OR_RETURN(const Tensor a, file.ReadF32(lm_head));
  ASSIGN_OR_RETURN(const Tensor b, file.ReadF32(wte));
  return std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

absl::Status WriteOnce(const std::string& out, const StateDict& state) {
  const std::string temporary = absl::StrCat(out, ".tmp");
  LocalCommunicator comm("import");
  absl::Status written = WriteCheckpointFile(temporary, state, comm);
  if (written.ok()) written = CommitFile(temporary, out);
  if (!written.ok()) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
  }
  return written;
}

}  // namespace

absl::StatusOr<GptConfig> GptConfigFromHuggingFace(absl::string_view json, absl::string_view what) {
  Json config;
  try {
    config = Json::parse(json);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not JSON: ", e.what()));
  }
  if (!config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  }
  GptConfig out;
  ASSIGN_OR_RETURN(out.n_layer, PositiveField(config, "n_layer", 12, what));
  ASSIGN_OR_RETURN(out.n_head, PositiveField(config, "n_head", 12, what));
  ASSIGN_OR_RETURN(out.n_embd, PositiveField(config, "n_embd", 768, what));
  ASSIGN_OR_RETURN(out.block_size, PositiveField(config, "n_positions", 1024, what));
  ASSIGN_OR_RETURN(out.vocab_size, PositiveField(config, "vocab_size", 50257, what));
  RETURN_IF_ERROR(CheckField(config, "model_type", "gpt2", what, "usine imports GPT-2 models"));
  const auto activation = config.find("activation_function");
  if (activation != config.end() && *activation != "gelu_new" &&
      *activation != "gelu_pytorch_tanh") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": activation_function is ", activation->dump(),
                     "; usine's GPT-2 computes the tanh GELU (\"gelu_new\")"));
  }
  const auto epsilon = config.find("layer_norm_epsilon");
  if (epsilon != config.end() &&
      (!epsilon->is_number() || std::abs(epsilon->get<double>() - 1e-5) > 1e-12)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": layer_norm_epsilon is ", epsilon->dump(), "; usine's LayerNorm uses 1e-05"));
  }
  RETURN_IF_ERROR(
      CheckField(config, "n_inner", 4 * out.n_embd, what, "usine's MLP is 4 n_embd wide"));
  RETURN_IF_ERROR(CheckField(config, "tie_word_embeddings", true, what,
                             "usine's GPT-2 ties its output layer to wte"));
  RETURN_IF_ERROR(CheckField(config, "scale_attn_weights", true, what,
                             "usine scales the scores by 1 / sqrt(head size)"));
  RETURN_IF_ERROR(CheckField(config, "scale_attn_by_inverse_layer_idx", false, what,
                             "usine does not scale the scores by layer"));
  RETURN_IF_ERROR(
      CheckField(config, "add_cross_attention", false, what, "usine's GPT-2 is a decoder alone"));
  out.name = PresetNameOf(out);
  RETURN_IF_ERROR(out.Validate());
  return out;
}

absl::StatusOr<HfGpt2Import> ImportHuggingFaceGpt2(const std::string& model,
                                                   const std::string& out) {
  std::error_code error;
  if (fs::exists(out, error)) {
    return absl::AlreadyExistsError(absl::StrCat(out, " exists; name a new file"));
  }
  ASSIGN_OR_RETURN(const HfFiles files, FindFiles(model));
  ASSIGN_OR_RETURN(const std::string config_text, ReadFile(files.config));
  HfGpt2Import result;
  ASSIGN_OR_RETURN(result.config, GptConfigFromHuggingFace(config_text, files.config));
  result.weights = files.weights;
  ASSIGN_OR_RETURN(const SafetensorsFile file, SafetensorsFile::Open(files.weights));

  // The model's tensors, to be filled: their names and shapes are the checkpoint's.
  ASSIGN_OR_RETURN(std::unique_ptr<Gpt> gpt,
                   Gpt::Create({.config = result.config, .initialize = false, .gradients = false}));
  StateDict state;
  RETURN_IF_ERROR(gpt->AddToStateDict(state, checkpoint_keys::kModelPrefix));

  // The file's names, without the prefix a GPT2LMHeadModel's keys carry.
  std::map<std::string, std::string> hf_names;
  for (const auto& [hf_name, entry] : file.entries()) {
    const std::string name =
        absl::StartsWith(hf_name, kHfPrefix) ? hf_name.substr(strlen(kHfPrefix)) : hf_name;
    if (!hf_names.emplace(name, hf_name).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          files.weights, ": tensor '", name, "' is there with and without '", kHfPrefix, "'"));
    }
  }
  for (const auto& [key, entry] : state.tensors()) {
    const std::string name = key.substr(strlen(checkpoint_keys::kModelPrefix));
    const auto it = hf_names.find(name);
    if (it == hf_names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(files.weights, ": no tensor '", name,
                                                     "', which a GPT-2 of this config has"));
    }
    RETURN_IF_ERROR(FillFrom(file, it->second, name, entry.global_shape, result.config.vocab_size,
                             entry.pieces.front().tensor));
    result.tensors += 1;
    result.bytes += entry.nbytes();
    hf_names.erase(it);
  }
  // What is left must be buffers or the tied output layer.
  for (const auto& [name, hf_name] : hf_names) {
    if (IsMaskBuffer(name)) {
      result.skipped.push_back(hf_name);
      continue;
    }
    if (name == "lm_head.weight") {
      const std::string wte =
          file.entries().count("wte.weight") ? "wte.weight" : absl::StrCat(kHfPrefix, "wte.weight");
      ASSIGN_OR_RETURN(const bool tied, TiedToWte(file, hf_name, wte));
      if (tied) {
        result.skipped.push_back(hf_name);
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat(files.weights, ": '", hf_name,
                       "' differs from wte.weight; usine's GPT-2 ties its output layer to wte"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(files.weights, ": tensor '", hf_name, "' is not one of GPT-2's"));
  }

  state.SetJson(checkpoint_keys::kModelConfig, GptConfigToJson(result.config));
  state.SetInt(checkpoint_keys::kStep, 0);
  state.SetInt(checkpoint_keys::kTokensSeen, 0);
  state.SetString(checkpoint_keys::kImportedFrom, files.weights);
  RETURN_IF_ERROR(WriteOnce(out, state));
  return result;
}

}  // namespace usine
