#include "runtime/train/internal/run_config_schema.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "runtime/train/internal/toml_text.h"

namespace usine::run_config_internal {
namespace {

constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The member `kMember` of the section `kSection` of a RunConfig.
template <auto kSection, auto kMember>
auto MakeRef() {
  using T = std::remove_cvref_t<decltype(std::declval<RunConfig&>().*kSection.*kMember)>;
  return Ref<T>{[](const RunConfig& c) -> const T& { return (c.*kSection).*kMember; },
                [](RunConfig& c) -> T& { return (c.*kSection).*kMember; }};
}

template <auto kSection, auto kMember>
Field Bool() {
  return BoolField{MakeRef<kSection, kMember>()};
}
template <auto kSection, auto kMember>
Field Int(int64_t min, int64_t max = kNoMax) {
  return IntField{MakeRef<kSection, kMember>(), min, max};
}
template <auto kSection, auto kMember>
Field OptionalInt(int64_t min, int64_t max) {
  return OptionalIntField{MakeRef<kSection, kMember>(), min, max};
}
// A number in [min, max] (closed ends unless opened).
template <auto kSection, auto kMember>
Field Float(double min, double max = kInf, bool min_open = false, bool max_open = false) {
  return FloatField{MakeRef<kSection, kMember>(), min, min_open, max, max_open};
}
template <auto kSection, auto kMember>
Field String(bool allow_empty) {
  return StringField{MakeRef<kSection, kMember>(), allow_empty};
}
// An enum member whose values are 0..n-1 in the order of `names`.
template <auto kSection, auto kMember>
Field Enum(std::vector<absl::string_view> names) {
  using E = std::remove_cvref_t<decltype(std::declval<RunConfig&>().*kSection.*kMember)>;
  return ChoiceField{std::move(names),
                     [](const RunConfig& c) { return static_cast<int>((c.*kSection).*kMember); },
                     [](RunConfig& c, int i) { (c.*kSection).*kMember = static_cast<E>(i); }};
}

const std::vector<absl::string_view>& PresetNames() {
  static const auto* names =
      new std::vector<absl::string_view>{"tiny", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"};
  return *names;
}

Field Preset() {
  return ChoiceField{PresetNames(),
                     [](const RunConfig& c) {
                       const auto& names = PresetNames();
                       auto it = std::find(names.begin(), names.end(), c.model.preset);
                       return it == names.end() ? -1 : static_cast<int>(it - names.begin());
                     },
                     [](RunConfig& c, int i) { c.model.preset = std::string(PresetNames()[i]); }};
}

// Names a key after the member it sets, so that the two cannot drift apart.
#define USINE_CONFIG_KEY(section, name, kind, ...)                                                 \
  ConfigKey {                                                                                      \
#section, #name, kind < &RunConfig::section, &decltype(RunConfig::section)::name>(__VA_ARGS__) \
  }

std::vector<ConfigKey> MakeConfigKeys() {
  constexpr int64_t kMaxTp = 65536, kMaxSeqLen = int64_t{1} << 24, kMaxBatch = int64_t{1} << 31;
  using A = ModelSection::Attention;
  static_assert(static_cast<int>(DeviceType::kCpu) == 0 &&
                static_cast<int>(DeviceType::kCuda) == 1);
  static_assert(static_cast<int>(LrDecay::kCosine) == 0 && static_cast<int>(LrDecay::kLinear) == 1);
  static_assert(static_cast<int>(A::kUnfused) == 0 && static_cast<int>(A::kFlash) == 1);
  static_assert(static_cast<int>(MatmulPrecision::kF32) == 0 &&
                static_cast<int>(MatmulPrecision::kTf32) == 1 &&
                static_cast<int>(MatmulPrecision::kBf16) == 2);
  std::vector<ConfigKey> keys = {
      USINE_CONFIG_KEY(run, dir, String, /*allow_empty=*/false),
      USINE_CONFIG_KEY(run, seed, Int, 0),

      ConfigKey{"model", "preset", Preset()},
      USINE_CONFIG_KEY(model, n_layer, OptionalInt, 1, kNoMax),
      USINE_CONFIG_KEY(model, n_head, OptionalInt, 1, kNoMax),
      USINE_CONFIG_KEY(model, n_embd, OptionalInt, 1, kNoMax),
      USINE_CONFIG_KEY(model, block_size, OptionalInt, 1, kMaxSeqLen),
      USINE_CONFIG_KEY(model, vocab_size, OptionalInt, 1, int64_t{1} << 31),
      USINE_CONFIG_KEY(model, device, Enum, {"cpu", "cuda"}),
      USINE_CONFIG_KEY(model, recompute, Bool),
      USINE_CONFIG_KEY(model, matmul_precision, Enum, {"f32", "tf32", "bf16"}),
      USINE_CONFIG_KEY(model, attention, Enum, {"unfused", "flash"}),

      USINE_CONFIG_KEY(parallel, tp, Int, 1, kMaxTp),
      USINE_CONFIG_KEY(parallel, zero, Bool),

      USINE_CONFIG_KEY(data, dir, String, /*allow_empty=*/false),
      USINE_CONFIG_KEY(data, seq_len, Int, 1, kMaxSeqLen),
      USINE_CONFIG_KEY(data, batch_size, Int, 1, kMaxBatch),
      USINE_CONFIG_KEY(data, micro_batch_size, Int, 0, kMaxBatch),
      USINE_CONFIG_KEY(data, shuffle, Bool),
      USINE_CONFIG_KEY(data, prefetch, Int, 1, 63),
      USINE_CONFIG_KEY(data, watch, String, /*allow_empty=*/true),
      USINE_CONFIG_KEY(data, replay_ratio, Float, 0, 1, false, /*max_open=*/true),
      USINE_CONFIG_KEY(data, replay_when_idle, Bool),

      USINE_CONFIG_KEY(optim, lr, Float, 0, kInf, /*min_open=*/true),
      USINE_CONFIG_KEY(optim, min_lr, Float, 0),
      USINE_CONFIG_KEY(optim, beta1, Float, 0, 1, false, /*max_open=*/true),
      USINE_CONFIG_KEY(optim, beta2, Float, 0, 1, false, /*max_open=*/true),
      USINE_CONFIG_KEY(optim, eps, Float, 0, kInf, /*min_open=*/true),
      USINE_CONFIG_KEY(optim, weight_decay, Float, 0),
      USINE_CONFIG_KEY(optim, max_grad_norm, Float, 0),
      USINE_CONFIG_KEY(optim, warmup_steps, Int, 0),
      USINE_CONFIG_KEY(optim, decay, Enum, {"cosine", "linear"}),

      USINE_CONFIG_KEY(train, max_steps, Int, 0),
      USINE_CONFIG_KEY(train, max_tokens, Int, 0),
      USINE_CONFIG_KEY(train, max_minutes, Float, 0),
      USINE_CONFIG_KEY(train, eval_every, Int, 0),
      USINE_CONFIG_KEY(train, eval_batches, Int, 0),
      USINE_CONFIG_KEY(train, max_bad_steps, Int, 1),
      USINE_CONFIG_KEY(train, publish_dir, String, /*allow_empty=*/true),

      USINE_CONFIG_KEY(checkpoint, every_steps, Int, 0),
      USINE_CONFIG_KEY(checkpoint, every_minutes, Float, 0),
      USINE_CONFIG_KEY(checkpoint, keep_last, Int, 1, std::numeric_limits<int>::max()),
      USINE_CONFIG_KEY(checkpoint, keep_every, Int, 0),
      USINE_CONFIG_KEY(checkpoint, resume, Bool),
      USINE_CONFIG_KEY(checkpoint, verify, Bool),
      USINE_CONFIG_KEY(checkpoint, init_from, String, /*allow_empty=*/true),

      USINE_CONFIG_KEY(logging, every_steps, Int, 1),
      USINE_CONFIG_KEY(logging, peak_tflops, Float, 0),
  };
  return keys;
}

#undef USINE_CONFIG_KEY

std::string Interval(const FloatField& f) {
  if (f.max == kInf) return absl::StrCat(f.min_open ? "> " : ">= ", TomlFloat(f.min));
  return absl::StrCat(f.min_open ? "(" : "[", TomlFloat(f.min), ", ", TomlFloat(f.max),
                      f.max_open ? ")" : "]");
}

std::string IntRange(int64_t min, int64_t max) {
  if (max == kNoMax) return absl::StrCat(">= ", min);
  return absl::StrCat("in [", min, ", ", max, "]");
}

}  // namespace

std::string ConfigKey::Dotted() const { return absl::StrCat(section, ".", name); }

const std::vector<ConfigKey>& ConfigKeys() {
  static const auto* keys = new std::vector<ConfigKey>(MakeConfigKeys());
  return *keys;
}

const std::vector<absl::string_view>& ConfigSections() {
  static const auto* sections = [] {
    auto* names = new std::vector<absl::string_view>;
    for (const ConfigKey& key : ConfigKeys()) {
      if (names->empty() || names->back() != key.section) names->push_back(key.section);
    }
    return names;
  }();
  return *sections;
}

const ConfigKey* FindConfigKey(absl::string_view section, absl::string_view name) {
  for (const ConfigKey& key : ConfigKeys()) {
    if (key.section == section && key.name == name) return &key;
  }
  return nullptr;
}

std::string DescribeAllowed(const Field& field) {
  struct Describe {
    std::string operator()(const BoolField&) const { return "true or false"; }
    std::string operator()(const IntField& f) const {
      return absl::StrCat("an integer ", IntRange(f.min, f.max));
    }
    std::string operator()(const OptionalIntField& f) const {
      return absl::StrCat("an integer ", IntRange(f.min, f.max));
    }
    std::string operator()(const FloatField& f) const {
      return absl::StrCat("a number ", f.max == kInf ? "" : "in ", Interval(f));
    }
    std::string operator()(const StringField& f) const {
      return f.allow_empty ? "a string" : "a non-empty string";
    }
    std::string operator()(const ChoiceField& f) const {
      return absl::StrCat("one of ", absl::StrJoin(f.names, ", ", [](std::string* out, auto n) {
                            absl::StrAppend(out, TomlString(n));
                          }));
    }
  };
  return std::visit(Describe{}, field);
}

}  // namespace usine::run_config_internal
