// `usine sample CKPT --prompt TEXT`: text that a checkpoint's GPT writes after a prompt, drawn
// token by token with a temperature and among the top k (runtime/nn/sampler.h), so that a
// person can see what the model has learned. Rank 0 prints each sample; under mpirun the
// model is tensor-parallel over --tp ranks (the other ranks repeat the work).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"

#include "CLI/CLI.hpp"
#include "collectives/byte_exchange.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/checkpoint_model.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/cli/internal/printable_text.h"
#include "runtime/cli/internal/run_on_world.h"
#include "runtime/cli/internal/run_tokenizer.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/gpt2_tokenizer.h"
#include "runtime/nn/sampler.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Writes text with a checkpoint's GPT: the prompt, then tokens drawn one at a time from\n"
    "softmax(logits / temperature) over the top-k likeliest, until --tokens or the end-of-text\n"
    "token. An empty prompt starts a new document. The tokenizer defaults to the one that\n"
    "tokenised the run's data (recorded in its manifest.json). Control bytes other than\n"
    "newline and tab are shown as \\xNN.";

struct SampleFlags {
  cli_internal::CheckpointModelFlags model;
  std::string prompt;
  std::string tokenizer_dir;  // Empty: the run's data manifest's.
  int64_t tokens = 200;
  double temperature = 0.8;
  int64_t top_k = 40;
  int64_t seed = 1337;
  int64_t samples = 1;
};

// The tokenizer that --tokenizer-dir names, or the one the run's data were made with.
absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> LoadTokenizer(
    const SampleFlags& f, const cli_internal::CheckpointModel& m) {
  ASSIGN_OR_RETURN(const cli_internal::TokenizerFiles files,
                   cli_internal::RunTokenizerFiles(f.tokenizer_dir, m.run_config, m.loaded.path));
  absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> tokenizer =
      Gpt2Tokenizer::Load(files.vocab_bpe, files.encoder_json);
  if (!tokenizer.ok() && f.tokenizer_dir.empty()) {
    return absl::NotFoundError(
        absl::StrCat("the run's tokenizer, recorded in ", m.run_config->data.dir,
                     "/manifest.json, cannot be loaded (", tokenizer.status().message(),
                     "): give --tokenizer-dir"));
  }
  return tokenizer;
}

// The model draws ids below its vocabulary size, which the tokenizer must decode, and reads
// the prompt's ids, which must be below it. (Every rank has the same model and prompt: the
// same outcome everywhere.)
absl::Status CheckVocabularies(int64_t model_vocab, const Gpt2Tokenizer& tokenizer,
                               absl::Span<const int32_t> prompt) {
  if (model_vocab > tokenizer.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model's vocabulary (", model_vocab, " tokens) is larger than the tokenizer's (",
        tokenizer.vocab_size(), "): give the --tokenizer-dir its data was tokenised with"));
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] >= model_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt: token ", i, " (id ", prompt[i],
                                                     ") is not in the model's ", model_vocab,
                                                     "-token vocabulary"));
    }
  }
  return absl::OkStatus();
}

absl::Status Run(World& world, const SampleFlags& f) {
  if (f.samples < 1 || f.tokens < 0) {
    return absl::InvalidArgumentError("--samples must be positive and --tokens not negative");
  }
  ASSIGN_OR_RETURN(cli_internal::CheckpointModel m,
                   cli_internal::LoadCheckpointModel(world, f.model));
  absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> tokenizer = LoadTokenizer(f, m);
  RETURN_IF_ERROR(AgreeOnStatus(world.comm(), tokenizer.status()));
  std::vector<int32_t> prompt = (*tokenizer)->Encode(f.prompt);
  if (prompt.empty()) prompt.push_back(Gpt2Tokenizer::kEndOfText);
  RETURN_IF_ERROR(CheckVocabularies(m.loaded.model->config().vocab_size, **tokenizer, prompt));
  if (world.rank() == 0) {
    absl::PrintF("usine sample: %s (step %d), temperature %g, top-k %d\n", m.loaded.path,
                 m.loaded.step, f.temperature, f.top_k);
  }
  // Drawn together in groups, whose caches stay within kGroup sequences' memory.
  constexpr int64_t kGroup = 8;
  for (int64_t first = 0; first < f.samples; first += kGroup) {
    const SampleOptions options{.max_new_tokens = f.tokens,
                                .temperature = f.temperature,
                                .top_k = f.top_k,
                                .seed = static_cast<uint64_t>(f.seed + first),
                                .stop_token = Gpt2Tokenizer::kEndOfText};
    ASSIGN_OR_RETURN(
        const std::vector<std::vector<int32_t>> group,
        SampleMany(*m.loaded.model, prompt, options, std::min(kGroup, f.samples - first)));
    if (world.rank() != 0) continue;
    for (size_t j = 0; j < group.size(); ++j) {
      const std::vector<int32_t>& drawn = group[j];
      const int64_t i = first + static_cast<int64_t>(j);
      // Shown without the end-of-text tokens that start a document or end the sample.
      std::vector<int32_t> shown(f.prompt.empty() ? prompt.end() : prompt.begin(), prompt.end());
      shown.insert(shown.end(), drawn.begin(), drawn.end());
      if (!shown.empty() && shown.back() == Gpt2Tokenizer::kEndOfText) shown.pop_back();
      ASSIGN_OR_RETURN(const std::string text, (*tokenizer)->Decode(shown));
      absl::PrintF("--- sample %d of %d (seed %d, %d tokens) ---\n%s\n", i + 1, f.samples,
                   f.seed + i, drawn.size(), cli_internal::PrintableText(text));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Command AddSampleCommand(CLI::App& parent) {
  auto f = std::make_shared<SampleFlags>();
  CLI::App* app = parent.add_subcommand(
      "sample", "text generated from a checkpoint and a prompt (top-k, temperature)");
  app->footer(kDescription);
  cli_internal::AddCheckpointModelFlags(*app, &f->model);
  cli_internal::AddFlag(*app, "--prompt", f->prompt, "the text to continue", "TEXT");
  cli_internal::AddFlag(*app, "--tokens", f->tokens, "tokens to draw at most per sample", "N");
  cli_internal::AddFlag(*app, "--temperature", f->temperature,
                        "softmax temperature; 0 takes the likeliest token", "T");
  cli_internal::AddFlag(*app, "--top-k", f->top_k, "draw among the k likeliest (0: all)", "K");
  cli_internal::AddFlag(*app, "--seed", f->seed, "of the draws; sample i uses seed + i", "S");
  cli_internal::AddFlag(*app, "--samples", f->samples, "continuations of the prompt", "N");
  cli_internal::AddFlag(*app, "--tokenizer-dir", f->tokenizer_dir,
                        "GPT-2's vocab.bpe and encoder.json (default: the run's data's)", "DIR");
  return {app, [f] {
            return cli_internal::RunOnWorld("usine sample",
                                            [&](World& world) -> absl::StatusOr<int> {
                                              RETURN_IF_ERROR(Run(world, *f));
                                              return 0;
                                            });
          }};
}

}  // namespace usine::cli
