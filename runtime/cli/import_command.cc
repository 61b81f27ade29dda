// `usine import MODEL OUT`: a GPT-2 in Hugging Face's layout (a directory with config.json and
// model.safetensors) as a usine checkpoint file (runtime/train/hf_gpt2_import.h), to fine-tune,
// sample or evaluate. One process, no MPI. Exit code 1 for any error, nothing written then.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "CLI/CLI.hpp"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/hf_gpt2_import.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Writes a usine checkpoint file from a GPT-2 in Hugging Face's layout: MODEL is a directory\n"
    "with config.json and model.safetensors (as save_pretrained writes them), or a .safetensors\n"
    "file with config.json beside it. OUT is then a model to start from: `usine finetune --from\n"
    "OUT` (checkpoint.init_from), `usine sample OUT`, `usine eval OUT`.";

absl::Status Run(const std::string& model, const std::string& out) {
  ASSIGN_OR_RETURN(const HfGpt2Import imported, ImportHuggingFaceGpt2(model, out));
  const GptConfig& c = imported.config;
  absl::PrintF(
      "usine import: %s -> %s: %s (%d layers, %d heads, %d wide, vocab %d padded to %d, block "
      "%d), %d tensors, %.1f MB\n",
      imported.weights, out, c.name, c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.padded_vocab(),
      c.block_size, imported.tensors, imported.bytes / 1e6);
  if (!imported.skipped.empty()) {
    absl::PrintF("  left out (not weights, or tied to wte): %s\n",
                 absl::StrJoin(imported.skipped, ", "));
  }
  return absl::OkStatus();
}

}  // namespace

Command AddImportCommand(CLI::App& parent) {
  struct Flags {
    std::string model;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* app = parent.add_subcommand(
      "import", "write a usine checkpoint from a Hugging Face GPT-2 (safetensors)");
  app->footer(kDescription);
  app->add_option("MODEL", flags->model, "a Hugging Face GPT-2 directory or .safetensors file")
      ->required()
      ->type_name("");
  app->add_option("OUT", flags->out, "the checkpoint file to write (must not exist)")
      ->required()
      ->type_name("");
  return {app, [flags] {
            return cli_internal::ExitCode("usine import", Run(flags->model, flags->out));
          }};
}

}  // namespace usine::cli
