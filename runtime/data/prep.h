// `usine prep` as a library call: text files, directories and JSONL files become token
// shards (token_shard.h) and a manifest, split into training and validation documents.
//
//   ASSIGN_OR_RETURN(auto tokenizer, Gpt2Tokenizer::Load("gpt2/vocab.bpe", "gpt2/encoder.json"));
//   PrepOptions options;
//   options.inputs = {"corpus/"};
//   options.out_dir = "data/corpus";
//   options.val_fraction = 0.05;
//   ASSIGN_OR_RETURN(PrepManifest manifest, Prep(options, *tokenizer, &world->comm()));
//
// Inputs. A directory stands for every file under it (recursively; names starting with "."
// and the output directory are left out), in byte order of their paths. A file named
// `*.jsonl` holds one document per line, the string in the line's `jsonl_field`
// (jsonl_reader.h; blank lines are skipped); any other file is one document, its bytes as
// they are. A document with no text is dropped.
//
// Output, in `out_dir` (docs/formats.md): `train_r<rank>_<index>.bin` and
// `val_r<rank>_<index>.bin` shards (rank and index zero-padded to 4 and 6 digits), and
// manifest.json. Every document is the end-of-text token followed by its tokens (llm.c's
// convention: EOT *before* each document). Documents fill a shard up to `shard_tokens` and
// continue in the next one; the last shard of each rank and split is shorter.
//
// Determinism. A document goes to validation when a hash of (its file's path as listed,
// its line number, or 0 for a text file) falls below `val_fraction`; the first document of
// the first input always does when val_fraction > 0, so validation is never empty (a
// corpus of one document then has no training data). The split, the tokens and the order
// of documents within each rank's shards depend on neither `threads` nor the number of
// ranks; the same inputs, options and rank count give the same bytes.
//
// Ranks. Every rank of `comm` calls Prep with the same options (a collective). Rank 0 lists
// the inputs; the files are dealt to the ranks by size (largest first to the rank with the
// fewest bytes), each rank writes its own shards, and rank 0 gathers the ranks' results and
// writes manifest.json (atomically). The ranks agree on the outcome before the manifest is
// written: an error on one rank makes Prep return an error on every rank, and the shards
// that were written are removed. With comm == nullptr Prep runs as a world of one.
//
// Errors. An input that cannot be read and a JSONL line that does not give a document are
// errors naming the path (and "path:line"). With OnError::kFatal Prep stops at the first,
// in input order; with kSkip it logs a warning, records it in the manifest and goes on.
// The output directory must not already hold a manifest.json or *.bin files.
//
// Thread-safety: Prep uses `threads` threads of its own; the tokenizer is shared by them.
// `progress` is called on the calling thread.
#ifndef USINE_RUNTIME_DATA_PREP_H_
#define USINE_RUNTIME_DATA_PREP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "runtime/data/gpt2_tokenizer.h"
#include "runtime/data/token_shard.h"

namespace usine {

enum class OnError { kFatal, kSkip };
enum class DataSplit { kTrain, kVal };
absl::string_view SplitName(DataSplit split);  // "train", "val"

struct PrepOptions {
  // Files and directories, in the order given. Required.
  std::vector<std::string> inputs;
  // Where the shards and manifest.json go; created if missing. Required.
  std::string out_dir;
  // The member of each JSONL line that holds the document. Default: "text".
  std::string jsonl_field = "text";
  // Tokens per shard, at most 2^31 - 1. Default: 100,000,000 (llm.c's).
  int64_t shard_tokens = 100'000'000;
  // The expected fraction of documents that go to validation, in [0, 1). Default: 0.
  double val_fraction = 0.0;
  // Tokenising threads per rank; 0 means std::thread::hardware_concurrency(). Default: 0.
  int threads = 0;
  // What an unreadable input or a bad JSONL line does. Default: kFatal.
  OnError on_error = OnError::kFatal;
  // The tokenizer's files, recorded in the manifest with their CRC-32C when not empty.
  // Default: empty.
  std::string vocab_bpe_path;
  std::string encoder_json_path;
  // How long a rank waits for the others (rank 0 listing the inputs; the slowest rank
  // finishing its files). Default: 24 hours.
  absl::Duration wait_timeout = absl::Hours(24);
};

// One rank's progress through its own files.
struct PrepProgress {
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;
  int64_t tokens = 0;
  int64_t documents = 0;
};
using PrepProgressFn = std::function<void(const PrepProgress&)>;

struct PrepShard {
  std::string file;  // Name within out_dir.
  DataSplit split = DataSplit::kTrain;
  int rank = 0;
  int64_t tokens = 0;
  int64_t documents = 0;  // Documents that start in this shard (its EOT tokens).
  uint32_t crc32c = 0;    // Of the whole file.
};

struct PrepSkipped {
  std::string path;
  int64_t line = 0;  // 0: the whole file.
  std::string reason;
};

struct PrepSplitTotals {
  int64_t shards = 0;
  int64_t tokens = 0;
  int64_t documents = 0;
};

struct PrepTokenizerFile {
  std::string path;  // Empty when not recorded.
  uint32_t crc32c = 0;
};

// What manifest.json holds (docs/formats.md).
struct PrepManifest {
  static constexpr int kFormatVersion = 1;
  int format_version = kFormatVersion;
  int64_t vocab_size = 0;
  int32_t eot_token = Gpt2Tokenizer::kEndOfText;
  PrepTokenizerFile vocab_bpe;
  PrepTokenizerFile encoder_json;
  TokenWidth token_width = TokenWidth::kUint16;
  int64_t shard_tokens = 0;
  double val_fraction = 0.0;
  std::string jsonl_field;
  int ranks = 1;
  std::vector<PrepShard> shards;  // Training shards first, then by rank and index.
  PrepSplitTotals train;
  PrepSplitTotals val;
  int64_t text_files = 0;   // Inputs read as one document each.
  int64_t jsonl_files = 0;  // Inputs read as JSONL.
  int64_t input_bytes = 0;
  std::vector<PrepSkipped> skipped;  // By path, then line.
};

// Runs the preparation described above; returns the manifest it wrote, on every rank.
// REQUIRES: every rank of *comm calls it with the same options; comm is a host
// communicator (mpi/ or local/).
[[nodiscard]] absl::StatusOr<PrepManifest> Prep(const PrepOptions& options,
                                                const Gpt2Tokenizer& tokenizer,
                                                Communicator* comm = nullptr,
                                                const PrepProgressFn& progress = nullptr);

// Reads a manifest.json that Prep wrote; an error names the file and the field.
[[nodiscard]] absl::StatusOr<PrepManifest> ReadPrepManifest(const std::string& path);

// The paths (`dir`/file) of the manifest's shards of `split`, in the manifest's order. `dir`
// is the directory that holds the manifest.
std::vector<std::string> ShardPaths(const PrepManifest& manifest, const std::string& dir,
                                    DataSplit split);

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_PREP_H_
