#include "runtime/cli/internal/data_bench.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "runtime/cli/internal/subprocess.h"
#include "runtime/core/status_macros.h"

namespace usine::cli_internal {
namespace {

constexpr size_t kReadChunk = 4 << 20;

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Reads `path` start to end; returns the bytes read.
absl::StatusOr<int64_t> ReadWhole(const std::string& path, char* buffer) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("opening", path);
  int64_t total = 0;
  while (true) {
    const ssize_t n = ::read(fd, buffer, kReadChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Errno("reading", path);
    }
    if (n == 0) break;
    total += n;
  }
  ::close(fd);
  return total;
}

// Prints "bytes tokens seconds" for encoding every file once with gpt-3-encoder, after one
// warm-up encode of the first file (as MeasureTokenizer does).
constexpr char kNodeScript[] = R"js(
const fs = require('fs');
const [dir, ...files] = process.argv.slice(2);
const { encode } = require(dir);
const texts = files.map((f) => fs.readFileSync(f, 'utf8'));
encode(texts[0]);
let bytes = 0, tokens = 0;
const start = process.hrtime.bigint();
for (const text of texts) { tokens += encode(text).length; bytes += Buffer.byteLength(text); }
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`${bytes} ${tokens} ${seconds}`);
)js";

}  // namespace

absl::StatusOr<ReadRate> MeasureRawRead(const std::vector<std::string>& paths, int token_bytes,
                                        absl::Duration duration) {
  std::unique_ptr<char[]> buffer(new char[kReadChunk]);
  for (const std::string& path : paths) RETURN_IF_ERROR(ReadWhole(path, buffer.get()).status());
  ReadRate rate;
  const absl::Time start = absl::Now();
  do {
    for (const std::string& path : paths) {
      ASSIGN_OR_RETURN(int64_t bytes, ReadWhole(path, buffer.get()));
      rate.bytes += bytes;
    }
    rate.elapsed = absl::Now() - start;
  } while (rate.elapsed < duration);
  rate.tokens = rate.bytes / token_bytes;
  return rate;
}

absl::StatusOr<ReadRate> MeasureDataStream(const DataStreamOptions& options, int token_bytes,
                                           absl::Duration duration) {
  ASSIGN_OR_RETURN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  RETURN_IF_ERROR(stream->Next().status());  // the prefetch thread is running and warm
  const int64_t per_batch = options.batch_size * options.seq_len;
  ReadRate rate;
  int64_t batches = 0;
  const absl::Time start = absl::Now();
  do {
    RETURN_IF_ERROR(stream->Next().status());
    ++batches;
    rate.elapsed = absl::Now() - start;
  } while (rate.elapsed < duration);
  rate.tokens = batches * per_batch;
  rate.bytes = batches * options.batch_size * (options.seq_len + 1) * token_bytes;
  return rate;
}

TokenizeRate MeasureTokenizer(const Gpt2Tokenizer& tokenizer,
                              const std::vector<std::string>& texts) {
  std::vector<int32_t> ids;
  if (!texts.empty()) tokenizer.EncodeTo(texts[0], &ids);
  TokenizeRate rate;
  const absl::Time start = absl::Now();
  for (const std::string& text : texts) {
    ids.clear();
    tokenizer.EncodeTo(text, &ids);
    rate.bytes += text.size();
    rate.tokens += ids.size();
  }
  rate.elapsed = absl::Now() - start;
  return rate;
}

absl::StatusOr<TokenizeRate> MeasureNodeEncoder(const std::string& package_dir,
                                                const std::vector<std::string>& paths) {
  char script[] = "/tmp/usine_gpt3_encoder_XXXXXX";
  const int fd = ::mkstemp(script);
  if (fd < 0) return Errno("creating", script);
  const bool written = ::write(fd, kNodeScript, sizeof(kNodeScript) - 1) ==
                       static_cast<ssize_t>(sizeof(kNodeScript) - 1);
  ::close(fd);
  std::string command = absl::StrCat("node ", ShellQuote(script), " ", ShellQuote(package_dir));
  for (const std::string& path : paths) absl::StrAppend(&command, " ", ShellQuote(path));
  absl::StatusOr<std::string> output =
      written ? RunCommand(command) : absl::InternalError(absl::StrCat("writing ", script));
  ::unlink(script);
  long long bytes = 0, tokens = 0;
  double seconds = 0;
  if (!output.ok() ||
      std::sscanf(output->c_str(), "%lld %lld %lf", &bytes, &tokens, &seconds) != 3) {
    return absl::UnavailableError(absl::StrCat(
        "running gpt-3-encoder from ", package_dir, " under node failed (",
        output.ok() ? "unexpected output" : output.status().message(),
        "); is node installed and the package there (scripts/get-sample-data.sh fetches it)?"));
  }
  return TokenizeRate{bytes, tokens, absl::Seconds(seconds)};
}

}  // namespace usine::cli_internal
