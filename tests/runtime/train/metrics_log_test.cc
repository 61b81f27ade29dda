// metrics.jsonl: lines appended across two opens (a resumed run), a cut-short last line
// ended before new ones, and errors that name the file.
#include "runtime/train/metrics_log.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "gtest/gtest.h"

#include "nlohmann/json.hpp"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

class MetricsLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("metrics_log_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> Lines() const {
    std::ifstream in(dir_ / "metrics.jsonl");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  std::string Contents() const {
    std::ifstream in(dir_ / "metrics.jsonl");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::filesystem::path dir_;
};

StepMetrics Step(int64_t step) {
  StepMetrics m;
  m.step = step;
  m.total_steps = 10;
  m.loss = 5.0 - 0.1 * static_cast<double>(step);
  m.times.step = absl::Milliseconds(100);
  return m;
}

TEST_F(MetricsLogTest, ASecondOpenContinuesTheFile) {
  {
    ASSERT_OK_AND_ASSIGN(auto log, MetricsLog::Open(dir_.string()));
    EXPECT_EQ(log->path(), (dir_ / "metrics.jsonl").string());
    ASSERT_OK(log->Append(Step(1)));
    ASSERT_OK(log->Append(Step(2)));
    // Each line is in the file as soon as Append returns.
    EXPECT_EQ(Lines().size(), 2u);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto log, MetricsLog::Open(dir_.string()));
    ASSERT_OK(log->Append(Step(3)));
    ASSERT_OK(log->Append(EvalMetrics{.step = 3, .val_loss = 4.5, .tokens = 64}));
  }
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["kind"], "train");
    EXPECT_EQ(j["step"], i + 1);
    EXPECT_DOUBLE_EQ(j["loss"].get<double>(), 5.0 - 0.1 * (i + 1));
  }
  const nlohmann::json eval = nlohmann::json::parse(lines[3]);
  EXPECT_EQ(eval["kind"], "eval");
  EXPECT_DOUBLE_EQ(eval["val_loss"].get<double>(), 4.5);
  EXPECT_EQ(Contents().back(), '\n');
}

TEST_F(MetricsLogTest, ACutShortLastLineIsEndedBeforeNewLines) {
  std::ofstream(dir_ / "metrics.jsonl") << "{\"kind\":\"train\",\"step\":1}\n{\"kind\":\"tr";
  ASSERT_OK_AND_ASSIGN(auto log, MetricsLog::Open(dir_.string()));
  ASSERT_OK(log->Append(Step(2)));
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "{\"kind\":\"tr");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["step"], 2);
}

TEST_F(MetricsLogTest, AMissingRunDirectoryIsAnErrorNamingTheFile) {
  const std::string missing = (dir_ / "no_such_run").string();
  absl::StatusOr<std::unique_ptr<MetricsLog>> log = MetricsLog::Open(missing);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(log.status().message().find(missing + "/metrics.jsonl"), std::string::npos)
      << log.status();
}

}  // namespace
}  // namespace usine
