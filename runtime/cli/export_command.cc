// `usine export CKPT OUT`: a checkpoint's GPT as a GPT-2 in Hugging Face's layout, the
// directory that `from_pretrained` reads (runtime/train/hf_gpt2_export.h), with the run's
// tokenizer when it is known. One process, no MPI. Exit code 1 for any error, nothing written
// then.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "CLI/CLI.hpp"
#include "collectives/local/local_communicator.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/cli/internal/run_tokenizer.h"
#include "runtime/core/status_macros.h"
#include "runtime/train/gpt_checkpoint.h"
#include "runtime/train/hf_gpt2_export.h"
#include "runtime/train/run_config.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Writes a checkpoint's GPT as a GPT-2 in Hugging Face's layout: the directory OUT gets\n"
    "config.json and model.safetensors (as save_pretrained writes them), and vocab.json and\n"
    "merges.txt, GPT-2's tokenizer files, from --tokenizer-dir or the run's data. CKPT is a\n"
    "checkpoint file, a checkpoints directory or a run directory (its latest checkpoint).\n"
    "`usine import OUT` reads it back.";

struct ExportFlags {
  std::string checkpoint;
  std::string out;
  std::string dtype = "f32";
  std::string tokenizer_dir;  // Empty: the run's data manifest's, when it records one.
};

absl::Status Run(const ExportFlags& f) {
  HfGpt2ExportOptions options;
  ASSIGN_OR_RETURN(options.dtype, ParseDType(f.dtype));
  LocalCommunicator comm("export");
  ASSIGN_OR_RETURN(GptCheckpoint loaded, LoadGptCheckpoint(comm, f.checkpoint));
  std::optional<RunConfig> run;
  if (!loaded.run_config.empty()) {
    ASSIGN_OR_RETURN(run,
                     ParseRunConfig(loaded.run_config, absl::StrCat(loaded.path, ": run_config")));
  }
  // --tokenizer-dir's files (the export fails without them), else the run's while they are
  // still there, else none (the summary says why).
  absl::StatusOr<cli_internal::TokenizerFiles> tokenizer =
      cli_internal::RunTokenizerFiles(f.tokenizer_dir, run, loaded.path);
  std::error_code error;
  if (tokenizer.ok() && f.tokenizer_dir.empty() &&
      !(std::filesystem::exists(tokenizer->encoder_json, error) &&
        std::filesystem::exists(tokenizer->vocab_bpe, error))) {
    tokenizer =
        absl::NotFoundError(absl::StrCat("the run's ", tokenizer->encoder_json, " or ",
                                         tokenizer->vocab_bpe, " is gone: give --tokenizer-dir"));
  }
  if (tokenizer.ok()) {
    options.vocab_bpe = tokenizer->vocab_bpe;
    options.encoder_json = tokenizer->encoder_json;
  }
  ASSIGN_OR_RETURN(const HfGpt2Export exported,
                   ExportHuggingFaceGpt2(*loaded.model, f.out, options));
  const GptConfig& c = loaded.model->config();
  absl::PrintF(
      "usine export: %s (step %d) -> %s: %d layers, %d heads, %d wide, vocab %d, block %d; "
      "%d tensors in %s, %.1f MB\n",
      loaded.path, loaded.step, f.out, c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.block_size,
      exported.tensors, f.dtype, exported.bytes / 1e6);
  if (exported.tokenizer) {
    absl::PrintF("  tokenizer: %s and %s as vocab.json and merges.txt\n", options.encoder_json,
                 options.vocab_bpe);
  } else {
    absl::PrintF("  no tokenizer files (%s)\n", tokenizer.status().message());
  }
  return absl::OkStatus();
}

}  // namespace

Command AddExportCommand(CLI::App& parent) {
  auto f = std::make_shared<ExportFlags>();
  CLI::App* app = parent.add_subcommand(
      "export", "write a checkpoint's GPT as a Hugging Face GPT-2 (safetensors)");
  app->footer(kDescription);
  app->add_option("CKPT", f->checkpoint, "a checkpoint file, checkpoints or run directory")
      ->required()
      ->type_name("");
  app->add_option("OUT", f->out, "the directory to write (must not exist)")
      ->required()
      ->type_name("");
  cli_internal::AddFlag(*app, "--dtype", f->dtype, "of the weights written: f32 or bf16", "T");
  cli_internal::AddFlag(*app, "--tokenizer-dir", f->tokenizer_dir,
                        "GPT-2's vocab.bpe and encoder.json (default: the run's data's)", "DIR");
  return {app, [f] { return cli_internal::ExitCode("usine export", Run(*f)); }};
}

}  // namespace usine::cli
