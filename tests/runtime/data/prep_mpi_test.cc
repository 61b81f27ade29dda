// Runs under mpirun at 2 and 4 ranks: Prep with the files dealt to the ranks gives the same
// documents, split the same way, as one process; an error on one rank fails every rank.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <mpi.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/mpi/mpi_communicator.h"
#include "runtime/data/prep.h"
#include "tests/runtime/data/prep_test_util.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

namespace fs = std::filesystem;
using testing::CountFiles;
using ::testing::HasSubstr;
using testing::SplitDocuments;
using testing::TestTokenizer;
using testing::WriteFile;

class PrepMpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto comm = MpiCommunicator::Create(MPI_COMM_WORLD, "prep");
    ASSERT_OK(comm);
    comm_ = *std::move(comm);
    // One directory for the job: rank 0's pid.
    int pid = ::getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    dir_ = fs::temp_directory_path() / ("usine_prep_mpi_test_" + std::to_string(pid));
    if (comm_->rank() == 0) WriteCorpus();
    MPI_Barrier(MPI_COMM_WORLD);
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (comm_->rank() == 0) fs::remove_all(dir_);
  }

  // The lines of JSONL file f.
  static std::vector<std::string> JsonlLines(int f) {
    std::vector<std::string> lines;
    for (int line = 0; line < 10 + 7 * f; ++line) {
      lines.push_back(absl::StrCat("{\"text\": \"file ", f, " line ", line, ": some words ",
                                   line * 31 % 97, "\"}\n"));
    }
    return lines;
  }

  // Files of different sizes (so that every rank gets some), text and JSONL.
  void WriteCorpus() {
    for (int f = 0; f < 9; ++f) {
      WriteFile(dir_ / "in" / absl::StrCat("part", f, ".jsonl"), absl::StrJoin(JsonlLines(f), ""));
      WriteFile(dir_ / "in" / absl::StrCat("text", f, ".txt"),
                absl::StrCat("Text file ", f, std::string(f * 40, '.')));
    }
  }

  PrepOptions Options(const std::string& out) const {
    PrepOptions options;
    options.inputs = {(dir_ / "in").string()};
    options.out_dir = (dir_ / out).string();
    options.shard_tokens = 200;
    options.val_fraction = 0.2;
    options.threads = 2;
    return options;
  }

  std::unique_ptr<MpiCommunicator> comm_;
  fs::path dir_;
};

TEST_F(PrepMpiTest, RanksTogetherWriteTheSameDocumentsAsOneProcess) {
  const PrepOptions single = Options("single");
  const PrepOptions multi = Options("multi");
  ASSERT_OK_AND_ASSIGN(PrepManifest m, Prep(multi, TestTokenizer(), comm_.get()));
  EXPECT_EQ(m.ranks, comm_->size());
  if (comm_->rank() != 0) return;

  ASSERT_OK_AND_ASSIGN(PrepManifest s, Prep(single, TestTokenizer()));
  EXPECT_EQ(s.ranks, 1);
  for (DataSplit split : {DataSplit::kTrain, DataSplit::kVal}) {
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> one, SplitDocuments(single.out_dir, s, split));
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> many, SplitDocuments(multi.out_dir, m, split));
    ASSERT_FALSE(one.empty());
    std::sort(one.begin(), one.end());
    std::sort(many.begin(), many.end());
    EXPECT_EQ(one, many) << SplitName(split);
  }
  EXPECT_EQ(m.train.tokens, s.train.tokens);
  EXPECT_EQ(m.val.tokens, s.val.tokens);
  EXPECT_EQ(m.train.documents + m.val.documents, 9 * 10 + 7 * 36 + 9);
  // Every rank wrote shards of its own.
  for (int r = 0; r < comm_->size(); ++r) {
    EXPECT_TRUE(std::any_of(m.shards.begin(), m.shards.end(),
                            [r](const PrepShard& shard) { return shard.rank == r; }))
        << "rank " << r;
  }
  EXPECT_EQ(CountFiles(multi.out_dir, ".bin"), static_cast<int>(m.shards.size()));
  ASSERT_OK_AND_ASSIGN(PrepManifest on_disk, ReadPrepManifest(multi.out_dir + "/manifest.json"));
  EXPECT_EQ(on_disk.shards.size(), m.shards.size());
}

TEST_F(PrepMpiTest, AnErrorOnOneRankFailsEveryRankWithoutHanging) {
  // part8.jsonl, the largest file, goes to rank 0; part7.jsonl, the second, to rank 1.
  if (comm_->rank() == 0) {
    std::vector<std::string> lines = JsonlLines(7);
    lines[1] = "{\"text\": oops, \"padding\": \"to keep the file second in size\"}\n";
    WriteFile(dir_ / "in/part7.jsonl", absl::StrJoin(lines, ""));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const PrepOptions options = Options("failed");
  const absl::StatusOr<PrepManifest> result = Prep(options, TestTokenizer(), comm_.get());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string where = (dir_ / "in/part7.jsonl").string() + ":2: not JSON";
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr(comm_->rank() == 1 ? where : "prep rank 1: " + where));
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(CountFiles(options.out_dir, ".bin"), 0) << "every rank removed its shards";
  EXPECT_EQ(CountFiles(options.out_dir, "manifest.json"), 0);
}

}  // namespace
}  // namespace usine
