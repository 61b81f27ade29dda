#include "runtime/nn/gpt_config.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

namespace usine {
namespace {

using Json = nlohmann::ordered_json;

// The integer fields, in the order GptConfigToJson writes them.
constexpr std::pair<const char*, int64_t GptConfig::*> kIntFields[] = {
    {"vocab_size", &GptConfig::vocab_size},
    {"block_size", &GptConfig::block_size},
    {"n_layer", &GptConfig::n_layer},
    {"n_head", &GptConfig::n_head},
    {"n_embd", &GptConfig::n_embd}};

}  // namespace

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

std::string GptConfigToJson(const GptConfig& config) {
  Json json = {{"name", config.name}};
  for (const auto& [key, field] : kIntFields) json[key] = config.*field;
  json["padded_vocab"] = config.padded_vocab();
  return json.dump();
}

absl::StatusOr<GptConfig> GptConfigFromJson(absl::string_view text) {
  const Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model config: not a JSON object: ", text.substr(0, 200)));
  }
  const auto bad = [](const char* key, const Json& value, absl::string_view expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("model config: ", key, ": expected ", expected, ", got ", value.dump()));
  };
  GptConfig config;
  const auto name = json.find("name");
  if (name == json.end()) return bad("name", nullptr, "a string");
  if (!name->is_string()) return bad("name", *name, "a string");
  config.name = name->get<std::string>();
  for (const auto& [key, field] : kIntFields) {
    const auto it = json.find(key);
    if (it == json.end()) return bad(key, nullptr, "an integer");
    if (!it->is_number_integer()) return bad(key, *it, "an integer");
    config.*field = it->get<int64_t>();
  }
  const auto padded = json.find("padded_vocab");
  if (padded != json.end() &&
      (!padded->is_number_integer() || padded->get<int64_t>() != config.padded_vocab())) {
    return bad("padded_vocab", *padded,
               absl::StrCat(config.padded_vocab(), " (vocab_size ", config.vocab_size,
                            " rounded up to a multiple of 128)"));
  }
  return config;
}

}  // namespace usine
