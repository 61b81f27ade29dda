// `usine prep`: the command line over Prep (runtime/data/prep.h). Runs alone or as every
// rank of `mpirun -np N usine prep ...`; rank 0 draws the progress and prints the result,
// and every rank exits with the same code.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "CLI/CLI.hpp"
#include "collectives/byte_exchange.h"
#include "runtime/cli/commands.h"
#include "runtime/core/progress_bar.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/gpt2_tokenizer.h"
#include "runtime/data/prep.h"
#include "runtime/launch/world.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Tokenises text files, directories (recursively) and JSONL files (*.jsonl, one document\n"
    "per line) with GPT-2's tokenizer into token shards plus manifest.json in --out\n"
    "(docs/formats.md). Each text file is one document; every document is preceded by the\n"
    "end-of-text token. Under `mpirun -np N` the ranks share the files.";

struct PrepFlags {
  std::vector<std::string> inputs;
  std::string out;
  std::string tokenizer_dir;
  std::string jsonl_field = "text";
  int64_t shard_tokens = 100'000'000;
  double val_fraction = 0.0;
  int64_t threads = 0;
  std::string on_error = "fatal";
};

void DeclareFlags(CLI::App& app, PrepFlags* f) {
  app.add_option("INPUT", f->inputs, "text files, directories and JSONL files")
      ->required()
      ->type_name("");
  app.add_option("--out", f->out, "where the shards and manifest.json go")
      ->required()
      ->type_name("DIR");
  app.add_option("--tokenizer-dir", f->tokenizer_dir,
                 "the directory with GPT-2's vocab.bpe and encoder.json")
      ->required()
      ->type_name("DIR");
  app.add_option("--jsonl-field", f->jsonl_field,
                 "the member of each JSONL line that holds the text")
      ->capture_default_str()
      ->type_name("NAME");
  app.add_option("--shard-tokens", f->shard_tokens, "tokens per shard")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--val-fraction", f->val_fraction,
                 "fraction of documents for validation, in [0, 1)")
      ->capture_default_str()
      ->type_name("F");
  app.add_option("--threads", f->threads,
                 "tokenising threads per rank; 0: the cores shared by the node's ranks")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--on-error", f->on_error,
                 "an unreadable file or bad JSONL line stops the run, or is skipped and recorded")
      ->check(CLI::IsMember({"fatal", "skip"}))
      ->capture_default_str()
      ->type_name("MODE");
}

absl::StatusOr<PrepOptions> ToOptions(const PrepFlags& f, const World& world) {
  if (f.shard_tokens < 1 || f.shard_tokens > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shard-tokens ", f.shard_tokens, " is not in [1, 2147483647]"));
  }
  if (!(f.val_fraction >= 0 && f.val_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--val-fraction ", f.val_fraction, " is not in [0, 1)"));
  }
  if (f.threads < 0 || f.threads > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads ", f.threads, " is not in [0, 4096]"));
  }
  PrepOptions options;
  options.inputs = f.inputs;
  options.out_dir = f.out;
  options.jsonl_field = f.jsonl_field;
  options.shard_tokens = f.shard_tokens;
  options.val_fraction = f.val_fraction;
  options.threads = static_cast<int>(f.threads);
  if (options.threads == 0) {
    const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    options.threads = std::max(1, cores / world.local_size());
  }
  options.on_error = f.on_error == "skip" ? OnError::kSkip : OnError::kFatal;
  options.vocab_bpe_path = absl::StrCat(f.tokenizer_dir, "/vocab.bpe");
  options.encoder_json_path = absl::StrCat(f.tokenizer_dir, "/encoder.json");
  return options;
}

std::string Describe(const PrepSplitTotals& totals) {
  return absl::StrFormat("%d tokens, %d documents, %d shard%s", totals.tokens, totals.documents,
                         totals.shards, totals.shards == 1 ? "" : "s");
}

absl::Status Run(const PrepFlags& flags, World& world) {
  ASSIGN_OR_RETURN(PrepOptions options, ToOptions(flags, world));

  absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> tokenizer =
      Gpt2Tokenizer::Load(options.vocab_bpe_path, options.encoder_json_path);
  RETURN_IF_ERROR(AgreeOnStatus(world.comm(), tokenizer.status()));

  const absl::Time start = absl::Now();
  std::optional<ProgressBar> bar;
  PrepProgress last;
  PrepProgressFn progress;
  if (world.rank() == 0) {
    progress = [&](const PrepProgress& p) {
      if (!bar.has_value()) {
        const std::string label =
            world.size() == 1 ? "prep" : absl::StrCat("prep (rank 0 of ", world.size(), ")");
        ProgressBarOptions bar_options;
        bar_options.label = label;
        bar_options.total_bytes = p.bytes_total;
        bar.emplace(std::move(bar_options));
      }
      bar->Update(p.bytes_done, p.tokens);
      last = p;
    };
  }
  ASSIGN_OR_RETURN(PrepManifest manifest, Prep(options, **tokenizer, &world.comm(), progress));
  if (bar.has_value()) bar->Finish(last.bytes_done, last.tokens);
  if (world.rank() == 0) {
    absl::PrintF("usine prep: %d files (%d text, %d JSONL, %.1f MB) -> %s in %.1f s\n",
                 manifest.text_files + manifest.jsonl_files, manifest.text_files,
                 manifest.jsonl_files, manifest.input_bytes / 1e6, options.out_dir,
                 absl::ToDoubleSeconds(absl::Now() - start));
    std::printf("  train: %s\n  val:   %s\n", Describe(manifest.train).c_str(),
                Describe(manifest.val).c_str());
    if (!manifest.skipped.empty()) {
      std::printf("  skipped: %zu inputs or lines (listed in manifest.json)\n",
                  manifest.skipped.size());
    }
  }
  return absl::OkStatus();
}

int RunPrep(const PrepFlags& flags) {
  WorldOptions world_options;
  world_options.bind_device = false;  // Prep needs no GPU.
  absl::StatusOr<std::unique_ptr<World>> world = World::Init(world_options);
  if (!world.ok()) {
    std::fprintf(stderr, "usine prep: %s\n", std::string(world.status().message()).c_str());
    return 1;
  }
  const absl::Status status = Run(flags, **world);
  // Every rank has the same outcome (the ranks agree before they finish); one prints it.
  if (!status.ok() && (*world)->rank() == 0) {
    std::fprintf(stderr, "usine prep: %s\n", std::string(status.message()).c_str());
  }
  return status.ok() ? 0 : 1;
}

}  // namespace

Command AddPrepCommand(CLI::App& parent) {
  auto flags = std::make_shared<PrepFlags>();
  CLI::App* app =
      parent.add_subcommand("prep", "tokenise text, directories and JSONL files into token shards");
  app->footer(kDescription);
  DeclareFlags(*app, flags.get());
  return {app, [flags] { return RunPrep(*flags); }};
}

}  // namespace usine::cli
