// The command line of one `usine` command: `--name value` or `--name=value` flags,
// positional arguments, `--help`, and `--` to end the flags.
//
//   FlagParser flags("usine prep", "[flags] INPUT...", "Tokenises text into shards.");
//   std::string out;
//   int64_t shard_tokens = 100'000'000;
//   flags.String("out", "DIR", "where the shards go", &out);
//   flags.Int("shard-tokens", "N", "tokens per shard", &shard_tokens);
//   ASSIGN_OR_RETURN(bool run, flags.Parse(args, &inputs));
//   if (!run) { std::cout << flags.Help(); return 0; }   // --help
//
// A flag's value is checked for its type as it is read; an unknown flag, a flag without its
// value, or a value of the wrong type is an InvalidArgument error that names the flag.
// Values keep the defaults they had when declared, and Help() shows those defaults.
// Not thread-safe; the targets must outlive the parser.
#ifndef USINE_RUNTIME_CLI_INTERNAL_FLAG_PARSER_H_
#define USINE_RUNTIME_CLI_INTERNAL_FLAG_PARSER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace usine::cli_internal {

class FlagParser {
 public:
  // `command` ("usine prep") and `usage` ("[flags] INPUT...") open the help text, then
  // `description`.
  FlagParser(std::string command, std::string usage, std::string description);

  void String(std::string name, std::string value_name, std::string help, std::string* value);
  void Int(std::string name, std::string value_name, std::string help, int64_t* value);
  void Double(std::string name, std::string value_name, std::string help, double* value);
  // A switch: `--name` sets it, `--name=true|false` sets it to that.
  void Bool(std::string name, std::string help, bool* value);
  // A flag that may be given several times; each value is appended to *values.
  void Repeated(std::string name, std::string value_name, std::string help,
                std::vector<std::string>* values);
  // A string that must be one of `choices`.
  void Choice(std::string name, std::vector<std::string> choices, std::string help,
              std::string* value);

  // Reads `args` (those after the command's name): flags into their targets, the other
  // arguments into *positional. Returns false, having read nothing more, at `--help`.
  [[nodiscard]] absl::StatusOr<bool> Parse(absl::Span<const std::string> args,
                                           std::vector<std::string>* positional);

  // Usage, description and every flag with its help and default.
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string value_name;
    std::string help;
    std::string default_value;  // As shown by Help(); empty for none.
    // Stores the text of a value, or says why it cannot.
    std::function<absl::Status(absl::string_view)> set;
    bool is_switch = false;  // Takes no value after it (Bool).
  };

  const Flag* Find(absl::string_view name) const;

  std::string command_;
  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
};

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_FLAG_PARSER_H_
