#include "runtime/cli/internal/flag_parser.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace usine::cli_internal {

FlagParser::FlagParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)),
      usage_(std::move(usage)),
      description_(std::move(description)) {}

void FlagParser::String(std::string name, std::string value_name, std::string help,
                        std::string* value) {
  flags_.push_back({std::move(name), std::move(value_name), std::move(help), *value,
                    [value](absl::string_view text) {
                      *value = std::string(text);
                      return absl::OkStatus();
                    }});
}

void FlagParser::Int(std::string name, std::string value_name, std::string help, int64_t* value) {
  flags_.push_back({std::move(name), std::move(value_name), std::move(help), absl::StrCat(*value),
                    [value](absl::string_view text) {
                      if (absl::SimpleAtoi(text, value)) return absl::OkStatus();
                      return absl::InvalidArgumentError("is not an integer");
                    }});
}

void FlagParser::Double(std::string name, std::string value_name, std::string help, double* value) {
  flags_.push_back({std::move(name), std::move(value_name), std::move(help), absl::StrCat(*value),
                    [value](absl::string_view text) {
                      if (absl::SimpleAtod(text, value)) return absl::OkStatus();
                      return absl::InvalidArgumentError("is not a number");
                    }});
}

void FlagParser::Bool(std::string name, std::string help, bool* value) {
  flags_.push_back({std::move(name), "", std::move(help), *value ? "true" : "false",
                    [value](absl::string_view text) {
                      if (text == "true" || text == "false") {
                        *value = text == "true";
                        return absl::OkStatus();
                      }
                      return absl::InvalidArgumentError("is not true or false");
                    },
                    /*is_switch=*/true});
}

void FlagParser::Repeated(std::string name, std::string value_name, std::string help,
                          std::vector<std::string>* values) {
  flags_.push_back({std::move(name), std::move(value_name), std::move(help), "",
                    [values](absl::string_view text) {
                      values->emplace_back(text);
                      return absl::OkStatus();
                    }});
}

void FlagParser::Choice(std::string name, std::vector<std::string> choices, std::string help,
                        std::string* value) {
  std::string value_name = absl::StrJoin(choices, "|");
  flags_.push_back({std::move(name), std::move(value_name), std::move(help), *value,
                    [value, choices = std::move(choices)](absl::string_view text) {
                      if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
                        return absl::InvalidArgumentError(
                            absl::StrCat("is not ", absl::StrJoin(choices, " or ")));
                      }
                      *value = std::string(text);
                      return absl::OkStatus();
                    }});
}

const FlagParser::Flag* FlagParser::Find(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::StatusOr<bool> FlagParser::Parse(absl::Span<const std::string> args,
                                       std::vector<std::string>* positional) {
  for (size_t i = 0; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    if (arg == "--") {
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "--help" || arg == "-h") return false;
    if (arg.size() < 2 || arg[0] != '-') {
      positional->emplace_back(arg);
      continue;
    }
    absl::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<absl::string_view> value;
    if (const size_t equals = name.find('='); equals != absl::string_view::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const Flag* flag = arg[1] == '-' ? Find(name) : nullptr;
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg.substr(0, arg.find('=')),
                                                     " (see ", command_, " --help)"));
    }
    if (!value.has_value() && flag->is_switch) value = "true";
    if (!value.has_value()) {
      if (i + 1 == args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", flag->name, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    if (absl::Status set = flag->set(*value); !set.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", flag->name, ": '", *value, "' ", set.message()));
    }
  }
  return true;
}

std::string FlagParser::Help() const {
  std::string help = absl::StrCat("usage: ", command_, " ", usage_, "\n\n", description_, "\n\n");
  for (const Flag& flag : flags_) {
    absl::StrAppend(&help,
                    absl::StrFormat("  --%-24s %s", flag.name + " " + flag.value_name, flag.help));
    if (!flag.default_value.empty()) absl::StrAppend(&help, " (default: ", flag.default_value, ")");
    absl::StrAppend(&help, "\n");
  }
  absl::StrAppend(&help, absl::StrFormat("  --%-24s %s\n", "help", "show this help"));
  return help;
}

}  // namespace usine::cli_internal
