#include "runtime/core/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/status_macros.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("usine_atomic_file_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }
  int Files() {
    int n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++n;
    return n;
  }
  std::filesystem::path dir_;
};

TEST_F(AtomicFileTest, WritesThePiecesInOrderAndReplacesAnOldFile) {
  const std::string path = (dir_ / "m.json").string();
  ASSERT_OK(WriteFileAtomically(path, {"old"}));
  ASSERT_OK(WriteFileAtomically(path, {"{\"a\": ", std::string("\0\1", 2), "}"}));
  EXPECT_EQ(Read(path), std::string("{\"a\": \0\1}", 9));
  EXPECT_EQ(Files(), 1) << "no temporary file is left";
}

TEST_F(AtomicFileTest, AFailureNamesTheFileAndLeavesNothing) {
  const std::string path = (dir_ / "missing_dir" / "m.json").string();
  const absl::Status status = WriteFileAtomically(path, {"x"});
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ".tmp."));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(Files(), 0);
}

TEST_F(AtomicFileTest, PiecesMadeOneByOneAreWrittenInOrder) {
  const std::string path = (dir_ / "w.bin").string();
  ASSERT_OK(WriteFileAtomically(path, [](const PieceWriter& write) -> absl::Status {
    for (const char* piece : {"ab", "", "cde"}) RETURN_IF_ERROR(write(piece));
    return absl::OkStatus();
  }));
  EXPECT_EQ(Read(path), "abcde");
  EXPECT_EQ(Files(), 1);
}

TEST_F(AtomicFileTest, AProducersErrorKeepsTheOldFileAndLeavesNothingElse) {
  const std::string path = (dir_ / "w.bin").string();
  ASSERT_OK(WriteFileAtomically(path, {"old"}));
  const absl::Status status =
      WriteFileAtomically(path, [](const PieceWriter& write) -> absl::Status {
        RETURN_IF_ERROR(write("new, but "));
        return absl::DataLossError("the source went bad");
      });
  EXPECT_EQ(status, absl::DataLossError("the source went bad"));
  EXPECT_EQ(Read(path), "old");
  EXPECT_EQ(Files(), 1) << "no temporary file is left";
}

}  // namespace
}  // namespace usine
