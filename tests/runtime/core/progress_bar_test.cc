#include "runtime/core/progress_bar.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace usine {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(FormatProgress, ShowsFractionBytesRateItemsAndEta) {
  EXPECT_EQ(FormatProgress("prep", 12'300'000, 24'600'000, 3'100'000, "tokens", absl::Seconds(3),
                           /*with_bar=*/true),
            "prep [##########----------]  50.0%  12.3 MB/24.6 MB  4.1 MB/s  3.1M tokens  ETA 3s");
  EXPECT_EQ(FormatProgress("load", 0, 5'000'000'000, 0, "tensors", absl::ZeroDuration(), false),
            "load   0.0%  0 B/5.00 GB  0 B/s  0 tensors  ETA ?");
  EXPECT_EQ(FormatProgress("prep", 900, 900, 12, "tokens", absl::Seconds(200), false),
            "prep 100.0%  900 B/900 B  4 B/s  12 tokens  in 3m20s");
  EXPECT_THAT(FormatProgress("x", 1, 3601, 1, "t", absl::Seconds(1), false),
              HasSubstr("ETA 1h00m"));
}

// The bar's output, through a memory stream.
class ProgressBarTest : public ::testing::Test {
 protected:
  void SetUp() override { out_ = open_memstream(&buffer_, &size_); }
  void TearDown() override { std::free(buffer_); }
  std::string Output() {
    std::fflush(out_);
    return std::string(buffer_, size_);
  }
  void Close() { std::fclose(out_); }
  std::FILE* out_ = nullptr;
  char* buffer_ = nullptr;
  size_t size_ = 0;
};

TEST_F(ProgressBarTest, OnATerminalRedrawsOneLineInPlace) {
  ProgressBar bar({.label = "prep",
                   .total_bytes = 100,
                   .out = out_,
                   .in_place = true,
                   .redraw_interval = absl::ZeroDuration()});
  bar.Update(10, 1);
  bar.Update(50, 5);
  bar.Finish(100, 10);
  bar.Finish(100, 10);
  const std::string output = Output();
  Close();
  EXPECT_EQ(std::count(output.begin(), output.end(), '\r'), 3);
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1);
  EXPECT_THAT(output, HasSubstr("[##########----------]  50.0%"));
  EXPECT_THAT(output, EndsWith("10 tokens  in 0s\033[K\n"));
}

TEST_F(ProgressBarTest, InALogPrintsPlainLinesAtMostEveryInterval) {
  ProgressBar bar({.label = "prep", .total_bytes = 100, .out = out_, .in_place = false});
  bar.Update(10, 1);  // Within 5 s of the start: not drawn.
  bar.Update(20, 2);
  bar.Finish(100, 10);
  const std::string output = Output();
  Close();
  EXPECT_THAT(output, ::testing::StartsWith("prep 100.0%  100 B/100 B  "));
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1);
  EXPECT_THAT(output, EndsWith("10 tokens  in 0s\n"));
}

TEST_F(ProgressBarTest, InALogEveryUpdatePastTheIntervalPrintsALine) {
  ProgressBar bar({.label = "prep",
                   .total_bytes = 100,
                   .out = out_,
                   .in_place = false,
                   .line_interval = absl::ZeroDuration()});
  bar.Update(10, 1);
  bar.Update(20, 2);
  bar.Finish(100, 10);
  const std::string output = Output();
  Close();
  EXPECT_THAT(output, Not(HasSubstr("\r")));
  EXPECT_THAT(output, Not(HasSubstr("[")));
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 3);
  EXPECT_THAT(output, HasSubstr("prep  10.0%"));
  EXPECT_THAT(output, HasSubstr("prep  20.0%"));
}

}  // namespace
}  // namespace usine
