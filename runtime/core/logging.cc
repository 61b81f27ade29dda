#include "runtime/core/logging.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <sys/time.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

#include "runtime/core/status_macros.h"

namespace usine {
namespace {

std::atomic<int> min_level{-1};  // -1: not read from the environment yet.
std::atomic<int> log_rank{-1};
std::mutex sink_mu;
std::string* test_sink = nullptr;  // Guarded by sink_mu.

LogLevel LevelFromEnv() {
  const char* value = std::getenv("USINE_LOG_LEVEL");
  if (value == nullptr || value[0] == '\0') return LogLevel::kInfo;
  const std::string v = absl::AsciiStrToLower(value);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "info") return LogLevel::kInfo;
  if (v == "warning" || v == "warn") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  std::fprintf(stderr,
               "usine: USINE_LOG_LEVEL='%s' is not debug, info, warning or error; using info\n",
               value);
  return LogLevel::kInfo;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

}  // namespace

LogLevel MinLogLevel() {
  int level = min_level.load(std::memory_order_relaxed);
  if (level < 0) {
    level = static_cast<int>(LevelFromEnv());
    min_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(level);
}

void SetMinLogLevel(LogLevel level) { min_level.store(static_cast<int>(level)); }

void ReloadLogLevelFromEnv() { min_level.store(static_cast<int>(LevelFromEnv())); }

void SetLogRank(int rank) { log_rank.store(rank); }

void SetLogSinkForTesting(std::string* sink) {
  std::lock_guard<std::mutex> lock(sink_mu);
  test_sink = sink;
}

namespace logging_internal {

LogMessage::LogMessage(LogLevel level, const char* file, int line) {
  timeval now{};
  gettimeofday(&now, nullptr);
  tm local{};
  localtime_r(&now.tv_sec, &local);
  stream_ << absl::StrFormat("%c %02d:%02d:%02d.%03d ", LevelLetter(level), local.tm_hour,
                             local.tm_min, local.tm_sec, static_cast<int>(now.tv_usec / 1000));
  if (const int rank = log_rank.load(); rank >= 0) stream_ << "rank " << rank << ' ';
  stream_ << SourceLocation(file, line) << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  std::lock_guard<std::mutex> lock(sink_mu);
  if (test_sink != nullptr) {
    test_sink->append(text);
    return;
  }
  // One write() per line keeps lines whole when several threads or ranks share stderr.
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + written, text.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
}

}  // namespace logging_internal
}  // namespace usine
