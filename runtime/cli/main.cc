// `usine <command> [flags]`: parses the command line (CLI11) and runs the command given.
#include <vector>

#include "CLI/CLI.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/command_line.h"

int main(int argc, char** argv) {
  CLI::App usine("usine: a distributed training runtime for GPT-style models", "usine");
  usine.require_subcommand(1);
  const std::vector<usine::cli::Command> commands = {
      usine::cli::AddPrepCommand(usine),     usine::cli::AddTrainCommand(usine),
      usine::cli::AddFinetuneCommand(usine), usine::cli::AddEvalCommand(usine),
      usine::cli::AddSampleCommand(usine),   usine::cli::AddInspectCommand(usine),
      usine::cli::AddImportCommand(usine),   usine::cli::AddExportCommand(usine),
      usine::cli::AddBenchCommand(usine),
  };
  try {
    usine.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    namespace ci = usine::cli_internal;
    return ci::PrintParseFailure(ci::ExplainParseError(usine, error));
  }
  for (const usine::cli::Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 2;  // Unreachable: the parse requires one command.
}
