#include "collectives/watchdog.h"

#include <chrono>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

// Rank 0 of 3 whose peers answer as scripted.
class ScriptedProbe final : public ArrivalProbe {
 public:
  std::vector<std::optional<std::string>> ExchangeReports(const std::string& report,
                                                          absl::Duration grace) override {
    ++exchanges;
    return {report, std::nullopt, "broadcast #9 on communicator 'world' (rank 2 of 3)"};
  }
  [[noreturn]] void Abort(int) override { std::abort(); }
  int exchanges = 0;
};

class WatchdogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Watchdog::Get().set_expiry_action([this](const std::string& message, ArrivalProbe*) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(message);
    });
  }
  void TearDown() override { Watchdog::Get().ResetExpiryAction(); }
  std::vector<std::string> Messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::mutex mu_;
  std::vector<std::string> messages_;
};

TEST_F(WatchdogTest, AStuckCallIsReportedWithTheMissingRanks) {
  ScriptedProbe probe;
  Watchdog::Token token = Watchdog::Get().Track(
      "allreduce #3 on communicator 'world' (rank 0 of 3)", absl::Milliseconds(50), &probe);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_EQ(Messages().size(), 1u);
  EXPECT_EQ(Messages()[0],
            "watchdog: allreduce #3 on communicator 'world' (rank 0 of 3) did not complete "
            "within 50ms; rank(s) 1 did not arrive (no report within 3s); reports: allreduce #3 "
            "on communicator 'world' (rank 0 of 3); broadcast #9 on communicator 'world' (rank 2 "
            "of 3)");
  EXPECT_EQ(probe.exchanges, 1);
}

TEST_F(WatchdogTest, ACallThatCompletesInTimeIsForgotten) {
  ScriptedProbe probe;
  { Watchdog::Token token = Watchdog::Get().Track("barrier #1", absl::Milliseconds(100), &probe); }
  Watchdog::Token moved;
  {
    Watchdog::Token token = Watchdog::Get().Track("barrier #2", absl::Milliseconds(100), &probe);
    moved = std::move(token);
  }
  moved.Release();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Messages().empty());
  EXPECT_EQ(probe.exchanges, 0);
}

TEST_F(WatchdogTest, ACallWhoseTestSaysItHasCompletedIsDroppedAtItsDeadline) {
  ScriptedProbe probe;
  Watchdog::Token token =
      Watchdog::Get().Track("allreduce #4 (ran)", absl::Milliseconds(50), &probe);
  Watchdog::Get().SetCompletionTest(token, [] { return true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Messages().empty());
  EXPECT_EQ(probe.exchanges, 0);
}

TEST_F(WatchdogTest, ACallWhoseTestSaysItHasNotCompletedStillExpires) {
  ScriptedProbe probe;
  Watchdog::Token token =
      Watchdog::Get().Track("allreduce #5 (stuck)", absl::Milliseconds(50), &probe);
  Watchdog::Get().SetCompletionTest(token, [] { return false; });
  Watchdog::Token released = Watchdog::Get().Track("allreduce #6", absl::Seconds(60), &probe);
  released.Release();
  Watchdog::Get().SetCompletionTest(released, [] { return true; });  // Ignored.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_EQ(Messages().size(), 1u);
  EXPECT_THAT(Messages()[0], HasSubstr("allreduce #5 (stuck) did not complete within 50ms"));
}

TEST(WatchdogMessage, SaysWhenEveryRankReported) {
  const std::string message = Watchdog::ExpiryMessage("allgather #2", "did not complete within 1s",
                                                      {"a", "b"}, absl::Seconds(3));
  EXPECT_THAT(message, HasSubstr("every rank reported a stuck call; reports: a; b"));
  EXPECT_EQ(Watchdog::ExpiryMessage("send", "did not complete within 1s", {}, absl::Seconds(3)),
            "watchdog: send did not complete within 1s");
}

}  // namespace
}  // namespace usine
