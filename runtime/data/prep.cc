#include "runtime/data/prep.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "collectives/byte_exchange.h"
#include "collectives/local/local_communicator.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/crc32c.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/internal/prep_json.h"
#include "runtime/data/internal/prep_rank.h"
#include "runtime/data/internal/prep_sources.h"
#include "runtime/data/internal/shard_writer.h"

namespace usine {
namespace {

namespace fs = std::filesystem;
using data_internal::PrepSource;
using data_internal::RankOutput;
using data_internal::SourceKind;
using data_internal::SourcePlan;

constexpr char kManifestName[] = "manifest.json";

absl::Status CheckOptions(const PrepOptions& options) {
  if (options.inputs.empty()) return absl::InvalidArgumentError("prep: no inputs given");
  if (options.out_dir.empty()) return absl::InvalidArgumentError("prep: no output directory");
  if (options.jsonl_field.empty()) return absl::InvalidArgumentError("prep: empty JSONL field");
  if (options.shard_tokens < 1 || options.shard_tokens > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("prep: shard_tokens = ", options.shard_tokens, " is not in [1, 2^31 - 1]"));
  }
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prep: val_fraction = ", options.val_fraction, " is not in [0, 1)"));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("prep: threads = ", options.threads, " is negative"));
  }
  return absl::OkStatus();
}

absl::Status CreateOutputDirectory(const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::Status(
        absl::ErrnoToStatusCode(ec.value()),
        absl::StrCat(out_dir, ": cannot create the output directory: ", ec.message()));
  }
  return absl::OkStatus();
}

// Rank 0's part before the others start: an empty output directory and the list of files.
absl::StatusOr<SourcePlan> Plan(const PrepOptions& options) {
  RETURN_IF_ERROR(CreateOutputDirectory(options.out_dir));
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(options.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == kManifestName || absl::EndsWith(name, ".bin")) {
      return absl::FailedPreconditionError(
          absl::StrCat(entry.path().string(),
                       ": the output directory holds an earlier run's output; remove it or "
                       "choose another directory"));
    }
  }
  ASSIGN_OR_RETURN(SourcePlan plan,
                   data_internal::ListSources(options.inputs, options.out_dir, options.on_error));
  if (plan.sources.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prep: no input files in ", absl::StrJoin(options.inputs, ", ")));
  }
  return plan;
}

PrepManifest Merge(const PrepOptions& options, const Gpt2Tokenizer& tokenizer,
                   const SourcePlan& plan, std::vector<RankOutput> outputs) {
  PrepManifest m;
  m.vocab_size = tokenizer.vocab_size();
  m.token_width = TokenWidthFor(tokenizer.vocab_size());
  m.shard_tokens = options.shard_tokens;
  m.val_fraction = options.val_fraction;
  m.jsonl_field = options.jsonl_field;
  m.ranks = static_cast<int>(outputs.size());
  m.skipped = plan.skipped;
  for (RankOutput& output : outputs) {
    m.shards.insert(m.shards.end(), output.shards.begin(), output.shards.end());
    m.skipped.insert(m.skipped.end(), output.skipped.begin(), output.skipped.end());
  }
  // Training first; each split by rank, then index (the order the ranks reported them).
  std::stable_sort(m.shards.begin(), m.shards.end(), [](const PrepShard& a, const PrepShard& b) {
    return a.split == DataSplit::kTrain && b.split == DataSplit::kVal;
  });
  for (const PrepShard& shard : m.shards) {
    PrepSplitTotals& totals = shard.split == DataSplit::kTrain ? m.train : m.val;
    ++totals.shards;
    totals.tokens += shard.tokens;
    totals.documents += shard.documents;
  }
  std::sort(m.skipped.begin(), m.skipped.end(), [](const PrepSkipped& a, const PrepSkipped& b) {
    return std::tie(a.path, a.line) < std::tie(b.path, b.line);
  });
  for (const PrepSource& source : plan.sources) {
    ++(source.kind == SourceKind::kJsonl ? m.jsonl_files : m.text_files);
    m.input_bytes += source.bytes;
  }
  return m;
}

absl::StatusOr<PrepTokenizerFile> TokenizerFile(const std::string& path) {
  if (path.empty()) return PrepTokenizerFile();
  ASSIGN_OR_RETURN(uint32_t crc, Crc32cOfFile(path));
  return PrepTokenizerFile{path, crc};
}

// Rank 0: the tokenizer's checksums into *manifest, then manifest.json.
absl::Status WriteManifest(const PrepOptions& options, PrepManifest* manifest) {
  ASSIGN_OR_RETURN(manifest->vocab_bpe, TokenizerFile(options.vocab_bpe_path));
  ASSIGN_OR_RETURN(manifest->encoder_json, TokenizerFile(options.encoder_json_path));
  return WriteFileAtomically(absl::StrCat(options.out_dir, "/", kManifestName),
                             {data_internal::PrepManifestToJson(*manifest)});
}

// The first failure among the ranks' results, as this rank of `comm` reports it (another's
// named as AgreeOnStatus names it, "<communicator> rank R").
absl::Status FirstFailure(const std::vector<absl::StatusOr<RankOutput>>& results,
                          const Communicator& comm) {
  const int rank = comm.rank();
  int failed = 0;
  absl::Status first;
  for (size_t r = 0; r < results.size(); ++r) {
    if (results[r].ok()) continue;
    if (failed++ == 0) {
      first = static_cast<int>(r) == rank
                  ? results[r].status()
                  : WithContext(results[r].status(), absl::StrCat(comm.name(), " rank ", r));
    }
  }
  if (failed > 1) {
    first = absl::Status(
        first.code(), absl::StrCat(first.message(), " (and ", failed - 1, " more ranks failed)"));
  }
  return first;
}

}  // namespace

absl::string_view SplitName(DataSplit split) { return split == DataSplit::kVal ? "val" : "train"; }

absl::StatusOr<PrepManifest> Prep(const PrepOptions& options, const Gpt2Tokenizer& tokenizer,
                                  Communicator* comm, const PrepProgressFn& progress) {
  RETURN_IF_ERROR(CheckOptions(options));
  std::optional<LocalCommunicator> local;
  if (comm == nullptr) comm = &local.emplace("prep");
  const int rank = comm->rank();
  const CollectiveOptions wait{.timeout = options.wait_timeout};

  std::string message;
  if (rank == 0) message = data_internal::SourcePlanToJson(Plan(options));
  RETURN_IF_ERROR(BroadcastBytes(*comm, 0, &message, wait));
  absl::StatusOr<SourcePlan> plan = data_internal::SourcePlanFromJson(message);
  if (!plan.ok()) {
    return rank == 0 ? plan.status()
                     : WithContext(plan.status(), absl::StrCat(comm->name(), " rank 0"));
  }

  // On a file system that the ranks do not share, each rank needs the directory too.
  absl::StatusOr<RankOutput> mine = absl::UnknownError("not run");
  if (absl::Status created = CreateOutputDirectory(options.out_dir); !created.ok()) {
    mine = created;
  } else {
    const std::vector<std::vector<int>> assigned =
        data_internal::AssignSources(plan->sources, comm->size());
    mine =
        data_internal::PrepRank(options, tokenizer, plan->sources, assigned[rank], rank, progress);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> messages,
                   AllGatherBytes(*comm, data_internal::RankOutputToJson(mine), wait));
  std::vector<absl::StatusOr<RankOutput>> results;
  for (const std::string& m : messages) results.push_back(data_internal::RankOutputFromJson(m));
  absl::Status status = FirstFailure(results, *comm);

  // Rank 0 writes manifest.json and sends it (or its error) to the others.
  std::optional<PrepManifest> manifest;
  if (status.ok()) {
    if (rank == 0) {
      std::vector<RankOutput> outputs;
      for (absl::StatusOr<RankOutput>& result : results) outputs.push_back(*std::move(result));
      manifest = Merge(options, tokenizer, *plan, std::move(outputs));
      const absl::Status written = WriteManifest(options, &*manifest);
      message = written.ok() ? data_internal::PrepManifestToJson(*manifest)
                             : data_internal::StatusToJson(written);
    }
    RETURN_IF_ERROR(BroadcastBytes(*comm, 0, &message, wait));
    status = data_internal::StatusFromJson(message);
    if (status.ok() && rank != 0) {
      absl::StatusOr<PrepManifest> received =
          data_internal::PrepManifestFromJson(message, "manifest from rank 0");
      status = received.status();
      if (received.ok()) manifest = *std::move(received);
    }
    if (!status.ok() && rank != 0) {
      status = WithContext(status, absl::StrCat(comm->name(), " rank 0"));
    }
  }
  if (!status.ok()) {
    if (mine.ok()) data_internal::RemoveShards(options.out_dir, mine->shards);
    return status;
  }
  return *std::move(manifest);
}

std::vector<std::string> ShardPaths(const PrepManifest& manifest, const std::string& dir,
                                    DataSplit split) {
  std::vector<std::string> paths;
  for (const PrepShard& shard : manifest.shards) {
    if (shard.split == split) paths.push_back(absl::StrCat(dir, "/", shard.file));
  }
  return paths;
}

absl::StatusOr<PrepManifest> ReadPrepManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  std::stringstream content;
  content << in.rdbuf();
  return data_internal::PrepManifestFromJson(content.str(), path);
}

}  // namespace usine
