// Runs under mpirun at 2 and 4 ranks. The ranks write the test model as TP=2 x DP=size/2
// (TP innermost; the DP replicas hold the same pieces, and only the lowest writes each), then
// read it back as groups of 1, 2 and 4 ranks (each group at TP = its size, all groups at
// once), checking every element, the metadata of every writer rank, and the checksums.
#include <cstdlib>
#include <filesystem>
#include <string>

#include <mpi.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpoint_file.h"
#include "collectives/byte_exchange.h"
#include "collectives/mpi/mpi_communicator.h"
#include "tests/checkpoint/checkpoint_test_util.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using usine::testing::CheckModel;
using usine::testing::Fill;
using usine::testing::MakeModel;

class CheckpointFileMpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(world_, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
    std::string dir;
    if (world_->rank() == 0) {
      char tmpl[] = "/tmp/usine_ckpt_mpi_XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir = tmpl;
    }
    ASSERT_OK(BroadcastBytes(*world_, 0, &dir));
    dir_ = dir;
  }
  void TearDown() override {
    ASSERT_OK(world_->Barrier());
    if (world_->rank() == 0) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<MpiCommunicator> world_;
  std::string dir_;
};

TEST_F(CheckpointFileMpiTest, WrittenAtTp2ReadsBackAtTp1Tp2AndTp4) {
  const std::string path = dir_ + "/c.h5";
  {
    ASSERT_OK_AND_ASSIGN(StateDict state,
                         MakeModel(world_->rank() % 2, 2, Fill::kValues, world_->rank()));
    ASSERT_OK(WriteCheckpointFile(path, state, *world_));
  }
  for (int group : {1, 2, 4}) {
    if (group > world_->size()) continue;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> comm,
                         world_->Split(world_->rank() / group, world_->rank(), "readers"));
    ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(comm->rank(), group, Fill::kSentinel));
    ASSERT_OK(ReadCheckpointFile(path, state, *comm));
    EXPECT_EQ(CheckModel(state), "") << "group of " << group;
    for (int r = 0; r < world_->size(); ++r) {
      ASSERT_OK_AND_ASSIGN(std::string rng, state.GetBytes("rng/rank" + std::to_string(r)));
      EXPECT_EQ(rng, std::string("\0\x01\xff rng ", 8) + std::to_string(r));
    }
    EXPECT_EQ(*state.GetInt("step"), 1200);
  }
}

TEST_F(CheckpointFileMpiTest, DisagreeingRanksGetTheSameErrorAndNothingHangs) {
  StateDict state;
  // Rank 1 says the tensor is [4, 4]; the others [4, 5].
  const int64_t cols = world_->rank() == 1 ? 4 : 5;
  ASSERT_OK(state.AddTensor("w", *Tensor::Empty({4, cols}, DType::kF32)));
  const absl::Status s = WriteCheckpointFile(dir_ + "/bad.h5", state, *world_);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("tensor 'w': rank 0 has f32[4, 5] but rank 1 has "
                                                "f32[4, 4]"));
  StateDict metadata;
  metadata.SetInt("step", world_->rank() == 0 ? 1 : 2);
  EXPECT_THAT(WriteCheckpointFile(dir_ + "/bad.h5", metadata, *world_).message(),
              ::testing::HasSubstr("metadata 'step' differs between rank 0 and rank 1"));
}

}  // namespace
}  // namespace usine
