// LoadGptCheckpoint on one process: from a checkpoint file, a checkpoint directory and a run
// directory, out of checkpoints that also hold the optimizer's state; and the errors of paths
// and files that hold no loadable GPT. (Other layouts: gpt_inference_mpi_test.cc.)
#include "runtime/train/gpt_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/checkpoint_file.h"
#include "collectives/local/local_communicator.h"
#include "runtime/optim/adamw.h"
#include "tests/testing/device_test.h"
#include "tests/testing/small_gpt.h"

namespace usine {
namespace {

using testing::FixedLogits;
using ::testing::HasSubstr;
using testing::ReadTensor;
using testing::SmallGptConfig;

class GptCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_gpt_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ckpt_dir_ = dir_ + "/run/checkpoints";
    std::filesystem::create_directories(ckpt_dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Commits checkpoint `step` of `model` with AdamW's state, as the Trainer lays it out;
  // `model_config` "" leaves it out.
  void Save(Gpt& model, int64_t step, const std::string& model_config) {
    ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model.Parameters()));
    StateDict state;
    ASSERT_OK(model.AddToStateDict(state, "model/"));
    ASSERT_OK(adamw->AddToStateDict(state));
    ASSERT_GT(state.tensors().size(), 2 * model.Parameters().size());
    state.SetInt("step", step);
    state.SetString("run_config", "[run]\ndir = \"x\"\n");
    if (!model_config.empty()) state.SetJson("model_config", model_config);
    ASSERT_OK(WriteCheckpointFile(TemporaryCheckpointPath(ckpt_dir_, step), state, comm_));
    ASSERT_OK(CommitCheckpoint(ckpt_dir_, step));
  }

  absl::Status LoadError(const std::string& path) {
    absl::StatusOr<GptCheckpoint> loaded = LoadGptCheckpoint(comm_, path);
    EXPECT_FALSE(loaded.ok()) << path;
    return loaded.status();
  }

  LocalCommunicator comm_{"world"};
  std::string dir_, ckpt_dir_;
};

TEST_F(GptCheckpointTest, LoadsTheLatestOfARunOrADirectoryAndAnyFile) {
  ASSERT_OK_AND_ASSIGN(auto early, Gpt::Create({.config = SmallGptConfig(), .seed = 1}));
  ASSERT_OK_AND_ASSIGN(auto late, Gpt::Create({.config = SmallGptConfig(), .seed = 2}));
  Save(*early, 3, GptConfigToJson(SmallGptConfig()));
  Save(*late, 5, GptConfigToJson(SmallGptConfig()));
  const std::vector<float> want_late = FixedLogits(*late);
  for (const std::string& path : {dir_ + "/run", ckpt_dir_, ckpt_dir_ + "/step-00000005.h5"}) {
    ASSERT_OK_AND_ASSIGN(GptCheckpoint loaded, LoadGptCheckpoint(comm_, path));
    EXPECT_EQ(loaded.path, CheckpointPath(ckpt_dir_, 5)) << path;
    EXPECT_EQ(loaded.step, 5) << path;
    EXPECT_EQ(loaded.run_config, "[run]\ndir = \"x\"\n");
    EXPECT_EQ(loaded.model->config().n_embd, 8);
    EXPECT_EQ(FixedLogits(*loaded.model), want_late) << path;  // Bit for bit: the same sums.
  }
  ASSERT_OK_AND_ASSIGN(GptCheckpoint early_loaded,
                       LoadGptCheckpoint(comm_, CheckpointPath(ckpt_dir_, 3)));
  EXPECT_EQ(early_loaded.step, 3);
  EXPECT_EQ(FixedLogits(*early_loaded.model), FixedLogits(*early));
  EXPECT_NE(FixedLogits(*early), want_late);
}

TEST_F(GptCheckpointTest, PathsAndFilesWithoutAModelAreErrorsNamingThem) {
  absl::Status s = LoadError(dir_ + "/nowhere");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("no checkpoint at " + dir_ + "/nowhere"));
  s = LoadError(dir_);  // A directory without `latest` or checkpoints/latest.
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("no checkpoint in " + dir_ + ": neither"));

  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = SmallGptConfig(), .seed = 1}));
  Save(*model, 1, "");
  s = LoadError(ckpt_dir_);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(CheckpointPath(ckpt_dir_, 1) + ": no model to build"));

  GptConfig bad = SmallGptConfig();
  bad.n_head = 3;
  Save(*model, 2, GptConfigToJson(bad));
  s = LoadError(ckpt_dir_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(),
              HasSubstr(CheckpointPath(ckpt_dir_, 2) + ": GptConfig 'small': n_head 3"));

  GptConfig deeper = SmallGptConfig();
  deeper.n_layer = 3;  // The file has no h.2.
  Save(*model, 3, GptConfigToJson(deeper));
  s = LoadError(ckpt_dir_);
  EXPECT_THAT(s.message(), HasSubstr(CheckpointPath(ckpt_dir_, 3)));
  EXPECT_THAT(s.message(), HasSubstr("model/h.2."));

  const std::string garbage = dir_ + "/garbage.h5";
  std::ofstream(garbage) << "not an HDF5 file at all";
  s = LoadError(garbage);
  EXPECT_THAT(s.message(), HasSubstr(garbage));
}

// The weights staged through the host onto a CUDA device; logits there, and the next-token
// rows of a batch (copied together on the device), against the cpu's.
class GptCheckpointGpuTest : public GptCheckpointTest {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
    GptCheckpointTest::SetUp();
  }
};

TEST_F(GptCheckpointGpuTest, LoadsOntoACudaDevice) {
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = SmallGptConfig(), .seed = 4}));
  Save(*model, 1, GptConfigToJson(SmallGptConfig()));
  ASSERT_OK_AND_ASSIGN(GptCheckpoint loaded,
                       LoadGptCheckpoint(comm_, ckpt_dir_, {.device = Device::Cuda(0)}));
  const std::vector<float> want = FixedLogits(*model), got = FixedLogits(*loaded.model);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << "logit " << i;
  Tensor inputs = Tensor::Empty({2, 6}, DType::kI32).value();
  for (int i = 0; i < 12; ++i) static_cast<int32_t*>(inputs.raw_data())[i] = (i * 7 + 3) % 40;
  ASSERT_OK_AND_ASSIGN(Tensor next, loaded.model->NextTokenLogits(inputs));
  ASSERT_OK_AND_ASSIGN(std::vector<float> rows, ReadTensor<float>(next));
  const int64_t v = SmallGptConfig().vocab_size;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t j = 0; j < v; ++j) {
      EXPECT_NEAR(rows[b * v + j], want[(b * 6 + 5) * v + j], 1e-4) << "row " << b << ", id " << j;
    }
  }
}

}  // namespace
}  // namespace usine
