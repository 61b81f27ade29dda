#include "runtime/core/logging.h"

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogSinkForTesting(&sink_); }
  void TearDown() override {
    SetLogSinkForTesting(nullptr);
    SetLogRank(-1);
    unsetenv("USINE_LOG_LEVEL");
    ReloadLogLevelFromEnv();
  }
  std::string sink_;
};

int Evaluated(int* count) { return ++*count; }

TEST_F(LoggingTest, LinesCarryLevelTimeRankAndLocation) {
  SetMinLogLevel(LogLevel::kInfo);
  SetLogRank(3);
  USINE_LOG(INFO) << "loaded " << 12 << " shards";
  EXPECT_THAT(sink_, MatchesRegex("I [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} rank 3 "
                                  "logging_test\\.cc:[0-9]+\\] loaded 12 shards\n"));
}

TEST_F(LoggingTest, MessagesBelowTheThresholdAreDroppedUnevaluated) {
  SetMinLogLevel(LogLevel::kWarning);
  int count = 0;
  USINE_LOG(INFO) << Evaluated(&count);
  USINE_LOG(DEBUG) << Evaluated(&count);
  EXPECT_EQ(count, 0);
  EXPECT_TRUE(sink_.empty());
  USINE_LOG(ERROR) << "disk full";
  EXPECT_THAT(sink_, HasSubstr("disk full"));
  EXPECT_EQ(sink_[0], 'E');
}

TEST_F(LoggingTest, LevelComesFromTheEnvironment) {
  setenv("USINE_LOG_LEVEL", "debug", 1);
  ReloadLogLevelFromEnv();
  EXPECT_EQ(MinLogLevel(), LogLevel::kDebug);
  setenv("USINE_LOG_LEVEL", "ERROR", 1);
  ReloadLogLevelFromEnv();
  EXPECT_EQ(MinLogLevel(), LogLevel::kError);
  setenv("USINE_LOG_LEVEL", "loud", 1);
  ReloadLogLevelFromEnv();
  EXPECT_EQ(MinLogLevel(), LogLevel::kInfo);
}

TEST_F(LoggingTest, ConcurrentLinesStayWhole) {
  SetMinLogLevel(LogLevel::kInfo);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) USINE_LOG(INFO) << "thread " << t << " line " << i << " end";
    });
  }
  for (std::thread& t : threads) t.join();
  int lines = 0;
  size_t start = 0;
  for (size_t nl = sink_.find('\n'); nl != std::string::npos; nl = sink_.find('\n', start)) {
    const std::string line = sink_.substr(start, nl - start);
    EXPECT_THAT(line, MatchesRegex(".*thread [0-3] line [0-9]+ end")) << line;
    ++lines;
    start = nl + 1;
  }
  EXPECT_EQ(lines, 800);
}

}  // namespace
}  // namespace usine
