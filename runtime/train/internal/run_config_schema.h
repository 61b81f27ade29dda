// The keys of a RunConfig as a table: for each, its section and name, the RunConfig member it
// sets, its type and the values it allows. The reader (run_config_reader.h) and ToToml
// (run_config_writer.h) both walk this table, so a key added here is read, checked, written
// and suggested in errors alike.
//
//   const ConfigKey* key = FindConfigKey("optim", "lr");
//   std::visit([&](const auto& field) { ... field.ref.get(config) ... }, key->field);
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_SCHEMA_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_SCHEMA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

#include "runtime/train/run_config.h"

namespace usine::run_config_internal {

// Reads and writes one RunConfig member of type T.
template <typename T>
struct Ref {
  const T& (*get)(const RunConfig&);
  T& (*mut)(RunConfig&);
};

struct BoolField {
  Ref<bool> ref;
};
struct IntField {
  Ref<int64_t> ref;
  int64_t min;
  int64_t max;
};
// A model override: set or left to the preset.
struct OptionalIntField {
  Ref<std::optional<int64_t>> ref;
  int64_t min;
  int64_t max;
};
// A finite number in the interval from min to max, each end open or closed (max may be inf).
struct FloatField {
  Ref<double> ref;
  double min;
  bool min_open;
  double max;
  bool max_open;
};
struct StringField {
  Ref<std::string> ref;
  bool allow_empty;
};
// One of `names`; the member is an enum whose values are 0..n-1 in that order, or a string.
struct ChoiceField {
  std::vector<absl::string_view> names;
  int (*get)(const RunConfig&);  // the index of the member's value in names, or -1 if none
  void (*set)(RunConfig&, int index);
};

using Field =
    std::variant<BoolField, IntField, OptionalIntField, FloatField, StringField, ChoiceField>;

struct ConfigKey {
  absl::string_view section;
  absl::string_view name;
  Field field;

  std::string Dotted() const;  // "optim.lr"
};

// Every key, section by section in the order of run_config.h.
const std::vector<ConfigKey>& ConfigKeys();
// The section names in that order.
const std::vector<absl::string_view>& ConfigSections();
// The key `section`.`name`, or null.
const ConfigKey* FindConfigKey(absl::string_view section, absl::string_view name);

// What a field allows, for error messages: "an integer >= 1", "a number in [0, 1)",
// "a non-empty string", "one of "cosine", "linear"", "true or false".
std::string DescribeAllowed(const Field& field);

}  // namespace usine::run_config_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_SCHEMA_H_
