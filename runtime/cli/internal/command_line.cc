#include "runtime/cli/internal/command_line.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

#include "runtime/core/nearest_name.h"

namespace usine::cli_internal {
namespace {

// The innermost command that the parse reached ("usine bench data" for `bench data --x`).
const CLI::App& InnermostCommand(const CLI::App& usine) {
  const CLI::App* app = &usine;
  while (!app->get_subcommands().empty()) app = app->get_subcommands().back();
  return *app;
}

std::string DidYouMean(absl::string_view name, const std::vector<std::string>& known) {
  const std::vector<absl::string_view> views(known.begin(), known.end());
  const std::optional<absl::string_view> near = NearestName(name, views);
  return near.has_value() ? absl::StrCat(" (did you mean ", *near, "?)") : "";
}

std::vector<std::string> SubcommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) names.push_back(absl::StrCat("--", name));
  }
  return names;
}

// The line for an error other than --help.
std::string Explain(const CLI::App& command, const CLI::ParseError& error) {
  const std::vector<std::string> rest = command.remaining();
  const bool wants_command =
      command.get_require_subcommand_min() > 0 && command.get_subcommands().empty();
  if (wants_command) {
    const std::vector<std::string> commands = SubcommandNames(command);
    const std::string listed = absl::StrJoin(commands, ", ");
    if (!rest.empty() && !absl::StartsWith(rest[0], "-")) {
      return absl::StrCat("unknown command '", rest[0], "'", DidYouMean(rest[0], commands),
                          "; the commands are ", listed);
    }
    return absl::StrCat("give a command: ", listed, " (", CommandPath(command), " --help)");
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr && !rest.empty()) {
    if (absl::StartsWith(rest[0], "-")) {
      const std::string flag = rest[0].substr(0, rest[0].find('='));
      return absl::StrCat("unknown flag ", flag, DidYouMean(flag, FlagNames(command)), " (",
                          CommandPath(command), " --help)");
    }
    return absl::StrCat("unexpected argument '", rest[0], "'");
  }
  return error.what();
}

// Under mpirun or srun every rank parses the same line: the first rank speaks for them.
bool IsFirstLaunchedRank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* rank = std::getenv(name); rank != nullptr) return std::atoi(rank) == 0;
  }
  return true;
}

}  // namespace

std::string CommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  for (const CLI::App* up = app.get_parent(); up != nullptr; up = up->get_parent()) {
    path = absl::StrCat(up->get_name(), " ", path);
  }
  return path;
}

ParseFailure ExplainParseError(const CLI::App& usine, const CLI::ParseError& error) {
  const CLI::App& command = InnermostCommand(usine);
  if (error.get_name() == "CallForHelp" || error.get_name() == "CallForAllHelp") {
    return {.exit_code = 0, .out = usine.help(), .err = ""};  // Of the innermost command.
  }
  return {.exit_code = 2,
          .out = "",
          .err = absl::StrCat(CommandPath(command), ": ", Explain(command, error))};
}

int PrintParseFailure(const ParseFailure& failure) {
  if (IsFirstLaunchedRank()) {
    std::fputs(failure.out.c_str(), stdout);
    if (!failure.err.empty()) std::fprintf(stderr, "%s\n", failure.err.c_str());
  }
  return failure.exit_code;
}

int ExitCode(absl::string_view command, const absl::Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "%s: %s\n", std::string(command).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace usine::cli_internal
