#include "runtime/data/directory_watcher.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAre;

class DirectoryWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("usine_watch_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "sub.bin");  // a directory is not a shard
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST(LandedShardNameTest, FollowsTheLandingProtocol) {
  EXPECT_TRUE(IsLandedShardName("train_000001.bin"));
  EXPECT_FALSE(IsLandedShardName("train_000001.bin.tmp.1234"));
  EXPECT_FALSE(IsLandedShardName(".hidden.bin"));
  EXPECT_FALSE(IsLandedShardName(".bin"));
  EXPECT_FALSE(IsLandedShardName("notes.txt"));
}

TEST_F(DirectoryWatcherTest, ListsCompleteShardsSorted) {
  for (const char* name : {"b.bin", "a.bin", "c.bin.tmp.7", ".d.bin", "e.txt"}) {
    std::ofstream(Path(name)) << "x";
  }
  ASSERT_OK_AND_ASSIGN(auto watcher, DirectoryWatcher::Open(dir_.string()));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, watcher->List());
  EXPECT_THAT(names, ElementsAre("a.bin", "b.bin"));
}

TEST_F(DirectoryWatcherTest, InotifyWakesOnARenameIntoTheDirectory) {
  ASSERT_OK_AND_ASSIGN(auto watcher, DirectoryWatcher::Open(dir_.string(), WatchMethod::kInotify));
  ASSERT_TRUE(watcher->uses_inotify());
  ASSERT_OK_AND_ASSIGN(bool idle, watcher->Wait(absl::Milliseconds(10)));
  EXPECT_FALSE(idle);
  std::ofstream(Path("x.bin.tmp.1")) << "x";
  ASSERT_OK_AND_ASSIGN(bool written, watcher->Wait(absl::Seconds(5)));
  EXPECT_TRUE(written);
  std::future<absl::StatusOr<bool>> woken =
      std::async(std::launch::async, [&] { return watcher->Wait(absl::Seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(std::rename(Path("x.bin.tmp.1").c_str(), Path("x.bin").c_str()), 0);
  ASSERT_EQ(woken.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(*woken.get());
  EXPECT_THAT(*watcher->List(), ElementsAre("x.bin"));
}

TEST_F(DirectoryWatcherTest, PollingWaitsTheIntervalAndListStillSees) {
  ASSERT_OK_AND_ASSIGN(auto watcher, DirectoryWatcher::Open(dir_.string(), WatchMethod::kPolling));
  EXPECT_FALSE(watcher->uses_inotify());
  std::ofstream(Path("y.bin")) << "x";
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(bool changed, watcher->Wait(absl::Milliseconds(50)));
  EXPECT_FALSE(changed);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_THAT(*watcher->List(), ElementsAre("y.bin"));
}

TEST_F(DirectoryWatcherTest, AMissingDirectoryIsAnErrorNamingIt) {
  auto watcher = DirectoryWatcher::Open(Path("absent"));
  EXPECT_TRUE(absl::IsNotFound(watcher.status()));
  EXPECT_THAT(watcher.status().message(), ::testing::HasSubstr(Path("absent")));
}

}  // namespace
}  // namespace usine
