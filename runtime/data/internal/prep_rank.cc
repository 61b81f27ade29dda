#include "runtime/data/internal/prep_rank.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/internal/shard_writer.h"
#include "runtime/data/internal/worker_pool.h"
#include "runtime/data/jsonl_reader.h"

namespace usine::data_internal {
namespace {

// A batch closes at this much text or this many documents, whichever comes first: enough
// work per hand-off to keep the threads busy, small enough to spread a corpus of small
// files over them.
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchItems = 64;

// A document to tokenise (a text file's bytes or a raw JSONL line), or an error to report,
// at its place in the input.
struct Item {
  explicit Item(int source) : source(source) {}
  int source;
  int64_t line = 0;             // JSONL line number; 0 for a text file.
  std::string text;             // Freed once tokenised.
  absl::Status error;           // The reason, without the location; OK for a document.
  std::vector<int32_t> tokens;  // EOT, then the ids; empty for an empty document.
};

struct Batch {
  std::vector<Item> items;
  size_t text_bytes = 0;
  int64_t bytes_done = 0;  // This rank's input bytes read when the batch closed.
};

// `status` with the "path: " or "path:line: " that a reader put in front removed.
absl::Status WithoutLocation(const absl::Status& status, absl::string_view path) {
  absl::string_view message = status.message();
  if (!absl::ConsumePrefix(&message, path)) return status;
  if (absl::ConsumePrefix(&message, ":")) {
    while (!message.empty() && absl::ascii_isdigit(message.front())) message.remove_prefix(1);
  }
  absl::ConsumePrefix(&message, ": ");
  return absl::Status(status.code(), message);
}

absl::Status Located(absl::string_view path, int64_t line, const absl::Status& reason) {
  return absl::Status(reason.code(), line > 0
                                         ? absl::StrCat(path, ":", line, ": ", reason.message())
                                         : absl::StrCat(path, ": ", reason.message()));
}

absl::Status ErrnoReason(absl::string_view what) {
  const int error = errno;
  return absl::Status(absl::ErrnoToStatusCode(error), absl::StrCat(what, std::strerror(error)));
}

// The bytes of a regular file; the error is the reason only.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  // O_NONBLOCK: a FIFO must not block the open; it is then refused as not a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoReason("cannot open: ");
  struct stat st = {};
  if (::fstat(fd, &st) != 0) {
    const absl::Status error = ErrnoReason("cannot read: ");
    ::close(fd);
    return error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError("cannot read: not a regular file");
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (true) {
    if (done == content.size()) content.resize(content.size() + (64 << 10));  // It grew.
    const ssize_t n = ::read(fd, content.data() + done, content.size() - done);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const absl::Status error = ErrnoReason("cannot read: ");
      ::close(fd);
      return error;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  content.resize(done);
  return content;
}

void Tokenize(const PrepOptions& options, const Gpt2Tokenizer& tokenizer,
              const std::vector<PrepSource>& sources, Batch* batch) {
  for (Item& item : batch->items) {
    if (!item.error.ok()) continue;
    std::string text = std::move(item.text);
    item.text = std::string();
    if (sources[item.source].kind == SourceKind::kJsonl) {
      absl::StatusOr<std::string> parsed = ParseJsonlLine(text, options.jsonl_field);
      if (!parsed.ok()) {
        item.error = parsed.status();
        continue;
      }
      text = *std::move(parsed);
    }
    if (text.empty()) continue;
    item.tokens.push_back(Gpt2Tokenizer::kEndOfText);
    tokenizer.EncodeTo(text, &item.tokens);
  }
}

class RankPrep {
 public:
  RankPrep(const PrepOptions& options, const Gpt2Tokenizer& tokenizer,
           const std::vector<PrepSource>& sources, int rank, int threads,
           const PrepProgressFn& progress)
      : options_(options),
        tokenizer_(tokenizer),
        sources_(sources),
        progress_fn_(progress),
        max_in_flight_(2 * threads + 1),
        pool_(threads),
        train_(options.out_dir, DataSplit::kTrain, rank, options.shard_tokens,
               TokenWidthFor(tokenizer.vocab_size())),
        val_(options.out_dir, DataSplit::kVal, rank, options.shard_tokens,
             TokenWidthFor(tokenizer.vocab_size())) {}

  absl::StatusOr<RankOutput> Run(const std::vector<int>& mine) {
    for (int index : mine) progress_.bytes_total += sources_[index].bytes;
    absl::Status status;
    for (int index : mine) {
      status = sources_[index].kind == SourceKind::kJsonl ? ReadJsonl(index) : ReadText(index);
      if (!status.ok()) break;
    }
    if (status.ok()) status = Submit();
    while (status.ok() && !in_flight_.empty()) status = TakeOldest();
    if (status.ok()) status = train_.Finish();
    if (status.ok()) status = val_.Finish();
    RankOutput output;
    output.shards = train_.shards();
    output.shards.insert(output.shards.end(), val_.shards().begin(), val_.shards().end());
    if (!status.ok()) {
      RemoveShards(options_.out_dir, output.shards);
      return status;
    }
    if (progress_fn_) progress_fn_(progress_);
    output.skipped = std::move(skipped_);
    return output;
  }

 private:
  absl::Status ReadText(int index) {
    Item item(index);
    absl::StatusOr<std::string> text = ReadWholeFile(sources_[index].path);
    if (text.ok()) {
      bytes_read_ += static_cast<int64_t>(text->size());
      item.text = *std::move(text);
    } else {
      item.error = text.status();
    }
    return Add(std::move(item));
  }

  absl::Status ReadJsonl(int index) {
    const std::string& path = sources_[index].path;
    absl::StatusOr<std::unique_ptr<JsonlReader>> reader = JsonlReader::Open(path);
    if (!reader.ok()) {
      Item item(index);
      item.error = WithoutLocation(reader.status(), path);
      return Add(std::move(item));
    }
    int64_t counted = 0;  // Of the reader's bytes_read().
    while (true) {
      Item item(index);
      absl::StatusOr<bool> more = (*reader)->NextLine(&item.text, &item.line);
      bytes_read_ += (*reader)->bytes_read() - counted;
      counted = (*reader)->bytes_read();
      if (!more.ok()) {                           // A read error; the reader is at its end.
        item.line = (*reader)->lines_read() + 1;  // The line it failed to read.
        item.error = WithoutLocation(more.status(), path);
      } else if (!*more) {
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(Add(std::move(item)));
    }
  }

  absl::Status Add(Item item) {
    batch_.text_bytes += item.text.size();
    batch_.items.push_back(std::move(item));
    if (batch_.text_bytes < kBatchBytes && batch_.items.size() < kBatchItems) {
      return absl::OkStatus();
    }
    return Submit();
  }

  absl::Status Submit() {
    if (batch_.items.empty()) return absl::OkStatus();
    batch_.bytes_done = bytes_read_;
    in_flight_.push_back(pool_.Submit([&options = options_, &tokenizer = tokenizer_,
                                       &sources = sources_, batch = std::move(batch_)]() mutable {
      Tokenize(options, tokenizer, sources, &batch);
      return std::move(batch);
    }));
    batch_ = Batch();
    while (in_flight_.size() >= max_in_flight_) RETURN_IF_ERROR(TakeOldest());
    return absl::OkStatus();
  }

  // Writes the oldest batch in flight once it is tokenised.
  absl::Status TakeOldest() {
    Batch batch = in_flight_.front().get();
    in_flight_.pop_front();
    for (Item& item : batch.items) RETURN_IF_ERROR(Write(item));
    progress_.bytes_done = batch.bytes_done;
    if (progress_fn_) progress_fn_(progress_);
    return absl::OkStatus();
  }

  absl::Status Write(const Item& item) {
    const PrepSource& source = sources_[item.source];
    if (!item.error.ok()) {
      const absl::Status located = Located(source.path, item.line, item.error);
      if (options_.on_error == OnError::kFatal) return located;
      USINE_LOG(WARNING) << "skipping " << located.message();
      skipped_.push_back({source.path, item.line, std::string(item.error.message())});
      return absl::OkStatus();
    }
    if (item.tokens.empty()) return absl::OkStatus();
    // The first document of the first input goes to validation, so that it is never empty.
    const bool first_of_all = item.source == 0 && !first_document_written_;
    if (item.source == 0) first_document_written_ = true;
    const bool val =
        options_.val_fraction > 0 &&
        (first_of_all || HashesToValidation(source.path, item.line, options_.val_fraction));
    progress_.tokens += static_cast<int64_t>(item.tokens.size());
    ++progress_.documents;
    return (val ? val_ : train_).Append(item.tokens);
  }

  const PrepOptions& options_;
  const Gpt2Tokenizer& tokenizer_;
  const std::vector<PrepSource>& sources_;
  const PrepProgressFn& progress_fn_;
  const size_t max_in_flight_;
  WorkerPool pool_;
  ShardWriter train_;
  ShardWriter val_;
  std::deque<std::future<Batch>> in_flight_;
  Batch batch_;
  int64_t bytes_read_ = 0;
  bool first_document_written_ = false;
  PrepProgress progress_;
  std::vector<PrepSkipped> skipped_;
};

}  // namespace

absl::StatusOr<RankOutput> PrepRank(const PrepOptions& options, const Gpt2Tokenizer& tokenizer,
                                    const std::vector<PrepSource>& sources,
                                    const std::vector<int>& mine, int rank,
                                    const PrepProgressFn& progress) {
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  RankPrep prep(options, tokenizer, sources, rank, threads, progress);
  return prep.Run(mine);
}

}  // namespace usine::data_internal
