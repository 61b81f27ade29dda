// What `usine` makes of a command line that CLI11 (the argument parser) stopped at: --help
// prints the help of the command it follows; anything else is one line naming the command
// and what is wrong, with the near name for a misspelt command or flag, and exit code 2.
//
//   try { usine.parse(argc, argv); } catch (const CLI::ParseError& e) {
//     return PrintParseFailure(ExplainParseError(usine, e));
//   }
#ifndef USINE_RUNTIME_CLI_INTERNAL_COMMAND_LINE_H_
#define USINE_RUNTIME_CLI_INTERNAL_COMMAND_LINE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "CLI/CLI.hpp"

namespace usine::cli_internal {

struct ParseFailure {
  int exit_code = 2;  // 0 after --help.
  std::string out;    // For stdout: the help text, after --help.
  std::string err;    // For stderr: one line ("usine prep: unknown flag --x ..."), or empty.
};

// `usine` is the whole command line's App, after its parse threw `error`.
ParseFailure ExplainParseError(const CLI::App& usine, const CLI::ParseError& error);

// Prints the failure (under mpirun or srun, where every rank parses the same command line,
// on the first rank only) and returns its exit code.
int PrintParseFailure(const ParseFailure& failure);

// `--name VALUE` on `app`, with its default shown in the help: the usual flag of a command.
template <typename T>
CLI::Option* AddFlag(CLI::App& app, const std::string& name, T& value, const std::string& help,
                     const std::string& value_name) {
  return app.add_option(name, value, help)->capture_default_str()->type_name(value_name);
}

// "usine bench data": the names of `app` and of the commands above it.
std::string CommandPath(const CLI::App& app);

// A command's exit code from its outcome: 0 when `status` is ok, else 1 after printing
// "<command>: <message>" to stderr ("usine inspect: no checkpoint at ...").
int ExitCode(absl::string_view command, const absl::Status& status);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_COMMAND_LINE_H_
