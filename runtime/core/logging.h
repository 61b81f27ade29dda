// Rank-prefixed logging with levels, one whole line per message even from many threads:
//
//   USINE_LOG(INFO) << "loaded " << n << " shards";
//   // I 09:42:19.123 rank 3 loader.cc:57] loaded 12 shards
//
// The threshold comes from USINE_LOG_LEVEL (debug, info, warning, error; default info),
// read at the first message. The rank prefix appears once SetLogRank() is called (World
// does this at launch). Lines go to stderr. Thread-safe.
#ifndef USINE_RUNTIME_CORE_LOGGING_H_
#define USINE_RUNTIME_CORE_LOGGING_H_

#include <sstream>
#include <string>

namespace usine {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// The current threshold: messages below it are dropped (and their operands not evaluated).
LogLevel MinLogLevel();
void SetMinLogLevel(LogLevel level);
// Reads USINE_LOG_LEVEL again; an unknown value keeps `info` and says so on stderr.
void ReloadLogLevelFromEnv();

// Rank shown in every line; -1 (the default) shows none.
void SetLogRank(int rank);

// Test seam: when set, lines are appended here instead of being written to stderr.
void SetLogSinkForTesting(std::string* sink);

namespace logging_internal {

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets the macro below be a single expression statement.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace logging_internal
}  // namespace usine

#define USINE_LOG_LEVEL_DEBUG ::usine::LogLevel::kDebug
#define USINE_LOG_LEVEL_INFO ::usine::LogLevel::kInfo
#define USINE_LOG_LEVEL_WARNING ::usine::LogLevel::kWarning
#define USINE_LOG_LEVEL_ERROR ::usine::LogLevel::kError

// NOLINTNEXTLINE(bugprone-macro-parentheses): the expansion is an expression statement.
#define USINE_LOG(severity)                                                                       \
  (USINE_LOG_LEVEL_##severity < ::usine::MinLogLevel())                                           \
      ? (void)0                                                                                   \
      : ::usine::logging_internal::Voidify() &                                                    \
            ::usine::logging_internal::LogMessage(USINE_LOG_LEVEL_##severity, __FILE__, __LINE__) \
                .stream()

#endif  // USINE_RUNTIME_CORE_LOGGING_H_
