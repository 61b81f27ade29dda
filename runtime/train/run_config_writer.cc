// ToToml (run_config.h): the effective configuration, key by key from the key table.
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include "runtime/nn/gpt_config.h"
#include "runtime/train/internal/run_config_schema.h"
#include "runtime/train/internal/toml_text.h"
#include "runtime/train/run_config.h"

namespace usine {
namespace {

using run_config_internal::BoolField;
using run_config_internal::ChoiceField;
using run_config_internal::ConfigKey;
using run_config_internal::FloatField;
using run_config_internal::IntField;
using run_config_internal::OptionalIntField;
using run_config_internal::StringField;
using run_config_internal::TomlFloat;
using run_config_internal::TomlString;

// The preset's value of a [model] override.
int64_t PresetValue(const GptConfig& preset, absl::string_view name) {
  if (name == "n_layer") return preset.n_layer;
  if (name == "n_head") return preset.n_head;
  if (name == "n_embd") return preset.n_embd;
  if (name == "block_size") return preset.block_size;
  return preset.vocab_size;
}

// "name = value\n", or for a model override left unset a comment with the preset's value.
struct WriteLine {
  const RunConfig& config;
  const ConfigKey& key;
  std::string& out;

  void operator()(const BoolField& f) const { Line(f.ref.get(config) ? "true" : "false"); }
  void operator()(const IntField& f) const { Line(absl::StrCat(f.ref.get(config))); }
  void operator()(const OptionalIntField& f) const {
    if (const std::optional<int64_t>& v = f.ref.get(config)) {
      Line(absl::StrCat(*v));
      return;
    }
    absl::StatusOr<GptConfig> preset = GptConfigNamed(config.model.preset);
    absl::StrAppend(&out, "# ", key.name, " = ",
                    preset.ok() ? absl::StrCat(PresetValue(*preset, key.name)) : "?",
                    "  (unset: the preset's)\n");
  }
  void operator()(const FloatField& f) const { Line(TomlFloat(f.ref.get(config))); }
  void operator()(const StringField& f) const { Line(TomlString(f.ref.get(config))); }
  void operator()(const ChoiceField& f) const {
    const int index = f.get(config);
    const bool known = index >= 0 && index < static_cast<int>(f.names.size());
    Line(TomlString(known ? f.names[index] : ""));
  }

  void Line(absl::string_view value) const { absl::StrAppend(&out, key.name, " = ", value, "\n"); }
};

}  // namespace

std::string ToToml(const RunConfig& config) {
  std::string out =
      "# The effective configuration of a usine run: every key, defaults included "
      "(docs/config.md).\n";
  absl::string_view section;
  for (const ConfigKey& key : run_config_internal::ConfigKeys()) {
    if (key.section != section) {
      section = key.section;
      absl::StrAppend(&out, "\n[", section, "]\n");
    }
    std::visit(WriteLine{config, key, out}, key.field);
  }
  return out;
}

}  // namespace usine
