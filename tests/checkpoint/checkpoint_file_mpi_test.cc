// Runs under mpirun at 2 and 4 ranks. The ranks write the test model as TP=2 x DP=size/2
// (TP innermost; the DP replicas hold the same pieces, and only the lowest writes each), then
// read it back as groups of 1, 2 and 4 ranks (each group at TP = its size, all groups at
// once), checking every element, the metadata of every writer rank, and the checksums.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <mpi.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
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

// Ranks that hold pieces of different tensors (ZeRO-1's optimizer state: each rank a range of
// the flattened parameters): tensor "t<r>" is rank r's alone, and "shared" is split between
// the ranks. Read back the same way, and with rank 0 wanting every tensor whole.
TEST_F(CheckpointFileMpiTest, RanksHoldingDifferentTensorsReadBackWithoutHanging) {
  const std::string path = dir_ + "/z.h5";
  const int rank = world_->rank(), size = world_->size();
  auto values = [](int tensor, int64_t n, int64_t first) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(tensor * 100 + first + i);
    return v;
  };
  {
    StateDict state;
    ASSERT_OK(state.AddTensor(absl::StrCat("t", rank),
                              testing::MakeTensor(Device::Cpu(), {3}, values(rank, 3, 0)).value()));
    ASSERT_OK(state.AddShard(
        "shared", testing::MakeTensor(Device::Cpu(), {2}, values(size, 2, 2 * rank)).value(),
        Shape{2 * size}, {2 * rank}));
    ASSERT_OK(WriteCheckpointFile(path, state, *world_));
  }
  {
    StateDict state;
    Tensor mine = Tensor::Empty({3}, DType::kF32).value();
    Tensor shared = Tensor::Empty({2}, DType::kF32).value();
    ASSERT_OK(state.AddTensor(absl::StrCat("t", rank), mine));
    ASSERT_OK(state.AddShard("shared", shared, Shape{2 * size}, {2 * rank}));
    ASSERT_OK(ReadCheckpointFile(path, state, *world_));
    EXPECT_EQ(testing::ReadTensor<float>(mine).value(), values(rank, 3, 0));
    EXPECT_EQ(testing::ReadTensor<float>(shared).value(), values(size, 2, 2 * rank));
  }
  {
    StateDict state;
    std::vector<Tensor> whole;
    if (rank == 0) {
      for (int r = 0; r < size; ++r) {
        whole.push_back(Tensor::Empty({3}, DType::kF32).value());
        ASSERT_OK(state.AddTensor(absl::StrCat("t", r), whole.back()));
      }
      whole.push_back(Tensor::Empty({2 * size}, DType::kF32).value());
      ASSERT_OK(state.AddTensor("shared", whole.back()));
    }
    ASSERT_OK(ReadCheckpointFile(path, state, *world_));
    for (size_t i = 0; i < whole.size(); ++i) {
      const bool is_shared = i + 1 == whole.size();
      EXPECT_EQ(testing::ReadTensor<float>(whole[i]).value(),
                is_shared ? values(size, 2 * size, 0) : values(static_cast<int>(i), 3, 0));
    }
  }
}

}  // namespace
}  // namespace usine
