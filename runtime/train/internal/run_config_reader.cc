#include "runtime/train/internal/run_config_reader.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "runtime/core/nearest_name.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/internal/run_config_schema.h"
#include "runtime/train/internal/toml_text.h"

// toml++ compiled here, header-only: the library's compiled form (Debian's libtomlplusplus.so)
// would be a link dependency of every program that links usine::runtime, and the fuzz build
// instruments the parser only when it is compiled with the rest. Without exceptions:
// toml::parse returns a parse_result to check, as the rest of usine checks a Status.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace usine::run_config_internal {
namespace {

// toml++ takes and gives std::string_view; this Abseil's string_view is its own type.
std::string_view Std(absl::string_view s) { return {s.data(), s.size()}; }
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// "run.toml:12:5", or the source alone when the position is unknown.
std::string Where(absl::string_view source, const toml::source_position& at) {
  if (at.line == 0) return std::string(source);
  return absl::StrCat(source, ":", at.line, ":", at.column);
}

std::string Quoted(absl::string_view text) {
  constexpr size_t kMaxShown = 60;
  if (text.size() <= kMaxShown) return TomlString(text);
  // Cut at a character boundary: UTF-8 continuation bytes are 10xxxxxx.
  size_t cut = kMaxShown;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(TomlString(text.substr(0, cut)), "...");
}

// "the string "fast"", "the integer 3", "a table", ...
std::string DescribeNode(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return absl::StrCat("the string ", Quoted(node.as_string()->get()));
    case toml::node_type::integer:
      return absl::StrCat("the integer ", node.as_integer()->get());
    case toml::node_type::floating_point:
      return absl::StrCat("the float ", TomlFloat(node.as_floating_point()->get()));
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "the boolean true" : "the boolean false";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// The value as written back in TOML, for "key = value is out of range".
std::string ShowValue(const toml::node& node) {
  if (const auto* s = node.as_string()) return Quoted(s->get());
  if (const auto* i = node.as_integer()) return absl::StrCat(i->get());
  if (const auto* f = node.as_floating_point()) return TomlFloat(f->get());
  return DescribeNode(node);
}

absl::Status WrongType(const ConfigKey& key, const toml::node& node) {
  return absl::InvalidArgumentError(absl::StrCat(
      key.Dotted(), ": expected ", DescribeAllowed(key.field), ", got ", DescribeNode(node)));
}

absl::Status OutOfRange(const ConfigKey& key, const toml::node& node) {
  return absl::InvalidArgumentError(absl::StrCat(key.Dotted(), " = ", ShowValue(node),
                                                 " is out of range: expected ",
                                                 DescribeAllowed(key.field)));
}

bool InInterval(const FloatField& f, double v) {
  if (!std::isfinite(v)) return false;
  const bool above_min = f.min_open ? v > f.min : v >= f.min;
  const bool below_max = f.max_open ? v < f.max : v <= f.max;
  return above_min && below_max;
}

// Sets the member of `key` from `node` when the value is one the key allows.
absl::Status DecodeField(const toml::node& node, const ConfigKey& key, RunConfig& config) {
  struct Decode {
    const toml::node& node;
    const ConfigKey& key;
    RunConfig& config;

    absl::Status operator()(const BoolField& f) const {
      const auto* b = node.as_boolean();
      if (b == nullptr) return WrongType(key, node);
      f.ref.mut(config) = b->get();
      return absl::OkStatus();
    }
    absl::Status operator()(const IntField& f) const {
      ASSIGN_OR_RETURN(int64_t v, Integer(f.min, f.max));
      f.ref.mut(config) = v;
      return absl::OkStatus();
    }
    absl::Status operator()(const OptionalIntField& f) const {
      ASSIGN_OR_RETURN(int64_t v, Integer(f.min, f.max));
      f.ref.mut(config) = v;
      return absl::OkStatus();
    }
    absl::Status operator()(const FloatField& f) const {
      double v;
      if (const auto* i = node.as_integer()) {
        v = static_cast<double>(i->get());
      } else if (const auto* d = node.as_floating_point()) {
        v = d->get();
      } else {
        return WrongType(key, node);
      }
      if (!InInterval(f, v)) return OutOfRange(key, node);
      f.ref.mut(config) = v;
      return absl::OkStatus();
    }
    absl::Status operator()(const StringField& f) const {
      const auto* s = node.as_string();
      if (s == nullptr) return WrongType(key, node);
      if (s->get().empty() && !f.allow_empty) return OutOfRange(key, node);
      f.ref.mut(config) = s->get();
      return absl::OkStatus();
    }
    absl::Status operator()(const ChoiceField& f) const {
      const auto* s = node.as_string();
      if (s == nullptr) return WrongType(key, node);
      auto it = std::find(f.names.begin(), f.names.end(), absl::string_view(s->get()));
      if (it == f.names.end()) {
        std::string message = absl::StrCat(key.Dotted(), " = ", Quoted(s->get()),
                                           " is not allowed: expected ", DescribeAllowed(f));
        if (auto near = NearestName(s->get(), f.names)) {
          absl::StrAppend(&message, " (did you mean ", TomlString(*near), "?)");
        }
        return absl::InvalidArgumentError(message);
      }
      f.set(config, static_cast<int>(it - f.names.begin()));
      return absl::OkStatus();
    }

    absl::StatusOr<int64_t> Integer(int64_t min, int64_t max) const {
      const auto* i = node.as_integer();
      if (i == nullptr) return WrongType(key, node);
      if (i->get() < min || i->get() > max) return OutOfRange(key, node);
      return i->get();
    }
  };
  return std::visit(Decode{node, key, config}, key.field);
}

std::string SectionList() {
  return absl::StrJoin(ConfigSections(), ", ", [](std::string* out, absl::string_view s) {
    absl::StrAppend(out, "[", s, "]");
  });
}

// The key called `name` in another section than `section` (the first), for a key put in the
// wrong place: "max_steps" under [optim] is "train.max_steps".
const ConfigKey* SameNameElsewhere(absl::string_view section, absl::string_view name) {
  for (const ConfigKey& key : ConfigKeys()) {
    if (key.name == name && key.section != section) return &key;
  }
  return nullptr;
}

// What replaced a key of earlier versions, for configurations written then; nullptr for any
// other key.
const char* Replacement(absl::string_view dotted) {
  if (dotted == "model.tf32") {
    return "model.matmul_precision = \"tf32\" replaced model.tf32 = true (and \"f32\" false)";
  }
  return nullptr;
}

std::string UnknownKey(absl::string_view section, absl::string_view name) {
  const std::string dotted = absl::StrCat(section, ".", name);
  std::string message = absl::StrCat("unknown key ", TomlString(dotted));
  if (const char* replacement = Replacement(dotted)) {
    return absl::StrCat(message, " (", replacement, ")");
  }
  std::optional<std::string> suggestion;
  if (const ConfigKey* elsewhere = SameNameElsewhere(section, name)) {
    suggestion = elsewhere->Dotted();
  } else {
    std::vector<absl::string_view> names;
    for (const ConfigKey& key : ConfigKeys()) {
      if (key.section == section) names.push_back(key.name);
    }
    if (auto near = NearestName(name, names)) suggestion = absl::StrCat(section, ".", *near);
  }
  if (suggestion) absl::StrAppend(&message, " (did you mean ", TomlString(*suggestion), "?)");
  return message;
}

// A top-level name that is no section: a misspelt [section], or a key outside any section.
std::string UnknownTopLevel(absl::string_view name, bool is_table) {
  if (is_table) {
    std::string message = absl::StrCat("unknown section [", name, "]");
    if (auto near = NearestName(name, ConfigSections())) {
      absl::StrAppend(&message, " (did you mean [", *near, "]?)");
    } else {
      absl::StrAppend(&message, " (the sections are ", SectionList(), ")");
    }
    return message;
  }
  std::string message = absl::StrCat("unknown key ", TomlString(name),
                                     ": every key belongs to a section (", SectionList(), ")");
  if (const ConfigKey* elsewhere = SameNameElsewhere("", name)) {
    absl::StrAppend(&message, "; did you mean ", TomlString(elsewhere->Dotted()), "?");
  }
  return message;
}

// One error of a document, where it is.
struct Problem {
  toml::source_position at;
  std::string message;
};

void Report(std::vector<Problem>& problems, const toml::source_region& region,
            std::string message) {
  problems.push_back({region.begin, std::move(message)});
}

// The nearest known dotted key to `dotted`, as " (did you mean ...?)", or "".
std::string NearestDottedKey(absl::string_view dotted) {
  std::vector<std::string> all;
  for (const ConfigKey& key : ConfigKeys()) all.push_back(key.Dotted());
  std::vector<absl::string_view> views(all.begin(), all.end());
  if (auto near = NearestName(dotted, views)) {
    return absl::StrCat(" (did you mean ", TomlString(*near), "?)");
  }
  return "";
}

// The key that "section.name" (from --set) names, or why it names none.
absl::StatusOr<const ConfigKey*> LookUpDottedKey(absl::string_view dotted) {
  std::vector<absl::string_view> parts = absl::StrSplit(dotted, '.');
  const auto& sections = ConfigSections();
  const bool known_section =
      std::find(sections.begin(), sections.end(), parts[0]) != sections.end();
  if (parts.size() == 1) {
    if (known_section) {
      return absl::InvalidArgumentError(
          absl::StrCat("[", dotted, "] is a section: set one of its keys (", dotted, ".<key>)"));
    }
    return absl::InvalidArgumentError(UnknownTopLevel(dotted, /*is_table=*/false));
  }
  if (parts.size() == 2 && known_section) {
    if (const ConfigKey* key = FindConfigKey(parts[0], parts[1])) return key;
    return absl::InvalidArgumentError(UnknownKey(parts[0], parts[1]));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown key ", TomlString(dotted), NearestDottedKey(dotted)));
}

bool IsBareKeyPart(absl::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// Parses "v = <text>" and returns the value, or nullopt when that is not TOML.
std::optional<toml::parse_result> ParseValue(absl::string_view text) {
  const std::string document = absl::StrCat("v = ", text);
  toml::parse_result result = toml::parse(std::string_view(document), std::string_view("--set"));
  if (!result || result.table().size() != 1 || result.table().get("v") == nullptr) {
    return std::nullopt;
  }
  return result;
}

}  // namespace

absl::Status ApplyTomlDocument(absl::string_view text, absl::string_view source_name,
                               RunConfig& config) {
  toml::parse_result result = toml::parse(Std(text), Std(source_name));
  if (!result) {
    const toml::parse_error& error = result.error();
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source_name, error.source().begin),
                     ": TOML syntax error: ", Absl(error.description())));
  }
  std::vector<Problem> problems;
  const auto& sections = ConfigSections();
  for (auto&& [section_key, section_node] : result.table()) {
    const absl::string_view section = Absl(section_key.str());
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      Report(problems, section_key.source(), UnknownTopLevel(section, section_node.is_table()));
      continue;
    }
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      Report(problems, section_node.source(),
             absl::StrCat("[", section, "] must be a table of keys, got ",
                          DescribeNode(section_node)));
      continue;
    }
    for (auto&& [name_key, value] : *table) {
      const ConfigKey* key = FindConfigKey(section, Absl(name_key.str()));
      if (key == nullptr) {
        Report(problems, name_key.source(), UnknownKey(section, Absl(name_key.str())));
        continue;
      }
      if (absl::Status status = DecodeField(value, *key, config); !status.ok()) {
        Report(problems, value.source(), std::string(status.message()));
      }
    }
  }
  if (problems.empty()) return absl::OkStatus();
  // toml::table keeps its keys sorted; errors are listed in the order of the document.
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
  });
  return absl::InvalidArgumentError(
      absl::StrJoin(problems, "\n", [&](std::string* out, const Problem& p) {
        absl::StrAppend(out, Where(source_name, p.at), ": ", p.message);
      }));
}

absl::Status ApplyAssignment(absl::string_view assignment, RunConfig& config) {
  const std::string context = absl::StrCat("--set ", assignment);
  auto fail = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": ", message));
  };
  const size_t equals = assignment.find('=');
  if (equals == absl::string_view::npos) {
    return fail("expected section.key=value (e.g. optim.lr=3e-4)");
  }
  const absl::string_view dotted = absl::StripAsciiWhitespace(assignment.substr(0, equals));
  const absl::string_view text = absl::StripAsciiWhitespace(assignment.substr(equals + 1));
  std::vector<absl::string_view> parts = absl::StrSplit(dotted, '.');
  if (!std::all_of(parts.begin(), parts.end(), IsBareKeyPart)) {
    return fail("expected section.key=value, with a key of letters, digits, '_' and '-'");
  }
  absl::StatusOr<const ConfigKey*> key = LookUpDottedKey(dotted);
  if (!key.ok()) return fail(key.status().message());
  if (text.find_first_of("\r\n") != absl::string_view::npos) {
    return fail("the value must be on one line");
  }
  // String keys take the text as it is unless it is quoted; other keys take a TOML value,
  // and text that is none is kept as a string, for the error to show.
  const bool string_key = std::holds_alternative<StringField>((*key)->field) ||
                          std::holds_alternative<ChoiceField>((*key)->field);
  const bool quoted = absl::StartsWith(text, "\"") || absl::StartsWith(text, "'");
  std::optional<toml::parse_result> value;
  if (!string_key || quoted) value = ParseValue(text);
  if (!value) value = ParseValue(TomlString(text));
  if (!value) return fail("the value is not valid UTF-8");
  if (absl::Status status = DecodeField(*value->table().get("v"), **key, config); !status.ok()) {
    return fail(status.message());
  }
  return absl::OkStatus();
}

}  // namespace usine::run_config_internal
