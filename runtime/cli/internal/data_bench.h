// The measurements behind `usine bench data`: what DataStream delivers next to a plain read of
// the same files, and the tokenizer next to the gpt-3-encoder npm package under node, on the
// same text in the same run.
//
//   ASSIGN_OR_RETURN(ReadRate raw, MeasureRawRead(paths, absl::Seconds(3)));
//   ASSIGN_OR_RETURN(ReadRate stream, MeasureDataStream(options, absl::Seconds(3)));
//   double ratio = stream.bytes_per_second() / raw.bytes_per_second();
//
// Each measurement runs until `duration` has passed (and at least once through its work).
// The files are read once beforehand so that both sides read from the page cache.
#ifndef USINE_RUNTIME_CLI_INTERNAL_DATA_BENCH_H_
#define USINE_RUNTIME_CLI_INTERNAL_DATA_BENCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "runtime/data/data_stream.h"
#include "runtime/data/gpt2_tokenizer.h"

namespace usine::cli_internal {

struct ReadRate {
  int64_t bytes = 0;  // of shard files: header excluded for DataStream, whole files for read()
  int64_t tokens =
      0;  // tokens in those bytes (read), or inputs delivered (DataStream: B*T a batch)
  absl::Duration elapsed;
  double bytes_per_second() const { return bytes / absl::ToDoubleSeconds(elapsed); }
  double tokens_per_second() const { return tokens / absl::ToDoubleSeconds(elapsed); }
};

// Reads every file start to end with read(2) into one 4 MiB buffer, pass after pass.
// `token_bytes`: the width of a token, to count them.
[[nodiscard]] absl::StatusOr<ReadRate> MeasureRawRead(const std::vector<std::string>& paths,
                                                      int token_bytes, absl::Duration duration);

// Opens a DataStream with `options` and takes batches from it, doing nothing with them. The
// bytes are those of the shard samples read: batch_size * (seq_len + 1) tokens per batch.
[[nodiscard]] absl::StatusOr<ReadRate> MeasureDataStream(const DataStreamOptions& options,
                                                         int token_bytes, absl::Duration duration);

struct TokenizeRate {
  int64_t bytes = 0;
  int64_t tokens = 0;
  absl::Duration elapsed;
  double megabytes_per_second() const { return bytes / 1e6 / absl::ToDoubleSeconds(elapsed); }
};

// Encodes each text once, on this thread, after encoding the first one as a warm-up.
TokenizeRate MeasureTokenizer(const Gpt2Tokenizer& tokenizer,
                              const std::vector<std::string>& texts);

// The same with the gpt-3-encoder package in `package_dir` (its index.js) under `node`,
// reading `paths`; an error when node or the package is missing or the script fails.
[[nodiscard]] absl::StatusOr<TokenizeRate> MeasureNodeEncoder(
    const std::string& package_dir, const std::vector<std::string>& paths);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_DATA_BENCH_H_
