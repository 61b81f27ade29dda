// One process: asynchronous saves, retention, leftovers of a crash, and a disk that fills up
// during a save (a file-size limit in a child process).
#include "checkpoint/checkpointer.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/local/local_communicator.h"
#include "tests/checkpoint/checkpoint_test_util.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using usine::testing::CheckModel;
using usine::testing::Fill;
using usine::testing::MakeModel;

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/usine_checkpointer_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CheckpointerOptions Options() {
    CheckpointerOptions options;
    options.directory = dir_ + "/ckpt";
    return options;
  }
  void Touch(const std::string& name) { std::ofstream(dir_ + "/ckpt/" + name) << "x"; }

  LocalCommunicator comm_{"test"};
  std::string dir_;
};

TEST_F(CheckpointerTest, SaveSnapshotsAndReturnsThenLoadLatestReadsTheLastCommitted) {
  CheckpointerOptions options = Options();
  options.retention.keep_last = 2;
  options.retention.keep_every = 2;
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, options));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK_AND_ASSIGN(StateDict sentinel, MakeModel(0, 1, Fill::kSentinel));
  for (int64_t step = 1; step <= 5; ++step) {
    state.SetInt("step", step);
    ASSERT_OK(ckpt->Save(step, state));
  }
  // The snapshot is the caller's no more: overwriting the tensors now changes nothing saved.
  for (const auto& [name, entry] : state.tensors()) {
    for (size_t i = 0; i < entry.pieces.size(); ++i) {
      const Tensor& piece = entry.pieces[i].tensor;
      std::memcpy(piece.raw_data(), sentinel.tensors().at(name).pieces[i].tensor.raw_data(),
                  piece.nbytes());
    }
  }
  ASSERT_OK(ckpt->Wait());
  EXPECT_THAT(*ListCheckpointSteps(options.directory), ElementsAre(2, 4, 5));
  ASSERT_OK_AND_ASSIGN(int64_t step, ckpt->LoadLatest(sentinel));
  EXPECT_EQ(step, 5);
  EXPECT_EQ(*sentinel.GetInt("step"), 5);
  EXPECT_EQ(CheckModel(sentinel), "");
  const SaveTimings timings = ckpt->last_save_timings();
  EXPECT_EQ(timings.snapshot_bytes, state.piece_bytes());
  EXPECT_GT(timings.write, absl::ZeroDuration());
}

TEST_F(CheckpointerTest, LoadLatestFillsADictOfSomeOfTheCheckpointsTensors) {
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, Options()));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK(ckpt->Save(7, state));
  ASSERT_OK_AND_ASSIGN(StateDict sentinel, MakeModel(0, 1, Fill::kSentinel));
  StateDict some;
  ASSERT_OK(some.AddTensor("w_col", sentinel.tensors().at("w_col").pieces[0].tensor));
  ASSERT_OK(some.AddTensor("emb", sentinel.tensors().at("emb").pieces[0].tensor));
  ASSERT_OK_AND_ASSIGN(int64_t step, ckpt->LoadLatest(some));
  EXPECT_EQ(step, 7);
  for (const char* name : {"w_col", "emb"}) {
    const Tensor& got = some.tensors().at(name).pieces[0].tensor;
    EXPECT_EQ(std::memcmp(got.raw_data(), state.tensors().at(name).pieces[0].tensor.raw_data(),
                          got.nbytes()),
              0)
        << name;
  }
  EXPECT_EQ(some.metadata(), state.metadata());
}

TEST_F(CheckpointerTest, LoadLatestWithoutACheckpointIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, Options()));
  StateDict state;
  EXPECT_TRUE(absl::IsNotFound(ckpt->LoadLatest(state).status()));
}

TEST_F(CheckpointerTest, CreateRemovesTheLeftoversOfAnInterruptedSave) {
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, Options()));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK(ckpt->Save(7, state));
  ASSERT_OK(ckpt->Wait());
  ckpt.reset();
  Touch("step-00000009.h5.tmp");
  Touch("latest.tmp.4242");
  ASSERT_OK_AND_ASSIGN(ckpt, Checkpointer::Create(comm_, Options()));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/ckpt")) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre("latest", "step-00000007.h5"));
}

TEST_F(CheckpointerTest, RetentionNeverDeletesTheCheckpointThatLatestNames) {
  std::filesystem::create_directories(dir_ + "/ckpt");
  for (int step = 1; step <= 5; ++step) Touch(CheckpointFileName(step));
  std::ofstream(dir_ + "/ckpt/latest") << CheckpointFileName(1) << "\n";
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> deleted, ApplyRetention(dir_ + "/ckpt", {1, 0}));
  EXPECT_THAT(deleted, ElementsAre(2, 3, 4));
  EXPECT_THAT(*ListCheckpointSteps(dir_ + "/ckpt"), ElementsAre(1, 5));
}

// The entries of `state` whose names start with `prefix`, sharing its tensors.
absl::StatusOr<StateDict> Part(const StateDict& state, const std::string& prefix) {
  StateDict part;
  for (const auto& [name, e] : state.tensors()) {
    if (name.rfind(prefix, 0) != 0) continue;
    for (const TensorPiece& p : e.pieces) {
      RETURN_IF_ERROR(part.AddShard(name, p.tensor, e.global_shape, p.offset));
    }
  }
  return part;
}

TEST_F(CheckpointerTest, SaveAsWritesAnyPathWithoutLatestOrRetention) {
  CheckpointerOptions options = Options();
  options.retention.keep_last = 1;
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, options));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  const std::string name = state.tensors().begin()->first;  // One entry of several.
  ASSERT_GT(state.tensors().size(), 1u);
  ASSERT_OK_AND_ASSIGN(StateDict part, Part(state, name));
  std::filesystem::create_directories(dir_ + "/published");
  const std::string published = dir_ + "/published/model-v0001.h5";
  part.SetInt("version", 1);
  ASSERT_OK(ckpt->Save(1, state));
  ASSERT_OK(ckpt->SaveAs(published, part));  // Waits for the save in flight.
  ASSERT_OK(ckpt->SaveAs(dir_ + "/published/model-v0002.h5", part));
  ASSERT_OK(ckpt->Save(2, state));  // The whole state again, after a save of a part.
  ASSERT_OK(ckpt->Wait());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/published")) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre("model-v0001.h5", "model-v0002.h5"));  // No tmp, no latest.
  EXPECT_THAT(*ListCheckpointSteps(options.directory), ElementsAre(2));
  EXPECT_EQ(*ReadLatestStep(options.directory), 2);

  // The published file holds the part and its metadata; a load of a part of a file's entries
  // (the published one, or the whole checkpoint) reads just those.
  ASSERT_OK_AND_ASSIGN(StateDict sentinel, MakeModel(0, 1, Fill::kSentinel));
  ASSERT_OK_AND_ASSIGN(StateDict wanted, Part(sentinel, name));
  ASSERT_OK(ckpt->Load(published, wanted));
  EXPECT_EQ(*wanted.GetInt("version"), 1);
  const Tensor& loaded = wanted.tensors().at(name).pieces[0].tensor;
  const Tensor& saved = state.tensors().at(name).pieces[0].tensor;
  EXPECT_EQ(std::memcmp(loaded.raw_data(), saved.raw_data(), saved.nbytes()), 0);
  ASSERT_OK_AND_ASSIGN(sentinel, MakeModel(0, 1, Fill::kSentinel));
  ASSERT_OK(ckpt->LoadLatest(sentinel));
  EXPECT_EQ(CheckModel(sentinel), "");  // The save after SaveAs wrote every entry right.
}

TEST_F(CheckpointerTest, ResolveCheckpointPathFindsTheFileARunOrCheckpointsDirectoryNames) {
  const std::string run = dir_ + "/run";
  CheckpointerOptions options = Options();
  options.directory = run + "/checkpoints";
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, options));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK(ckpt->Save(3, state));
  ASSERT_OK(ckpt->Save(7, state));
  ASSERT_OK(ckpt->Wait());
  const std::string seventh = CheckpointPath(options.directory, 7);
  EXPECT_EQ(*ResolveCheckpointPath(run), seventh);                // A run directory.
  EXPECT_EQ(*ResolveCheckpointPath(options.directory), seventh);  // Its checkpoints.
  const std::string third = CheckpointPath(options.directory, 3);
  EXPECT_EQ(*ResolveCheckpointPath(third), third);  // A file, as it is.
  EXPECT_EQ(*ResolveCheckpointPathOnRankZero(comm_, run), seventh);

  absl::StatusOr<std::string> missing = ResolveCheckpointPath(dir_ + "/absent");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr(dir_ + "/absent"));
  absl::StatusOr<std::string> empty = ResolveCheckpointPath(dir_);  // Neither latest.
  EXPECT_TRUE(absl::IsNotFound(empty.status()));
  EXPECT_THAT(std::string(empty.status().message()), ::testing::HasSubstr("checkpoints/latest"));
}

TEST_F(CheckpointerTest, SaveAsIntoAMissingDirectoryFailsAtTheNextWaitAndLeavesNothing) {
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm_, Options()));
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  const std::string path = dir_ + "/nowhere/model-v0001.h5";
  ASSERT_OK(ckpt->SaveAs(path, state));
  const absl::Status status = ckpt->Wait();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(path));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/nowhere"));
  ASSERT_OK(ckpt->Save(1, state));  // The error was reported once; saving goes on.
  ASSERT_OK(ckpt->Wait());
}

// The model with its pieces on `device` (copied from the host model).
absl::StatusOr<StateDict> OnDevice(const StateDict& host, Device device) {
  StateDict out;
  for (const auto& [name, e] : host.tensors()) {
    for (const TensorPiece& p : e.pieces) {
      ASSIGN_OR_RETURN(Tensor piece, usine::testing::MakeTensor(device, p.tensor.shape(), e.dtype,
                                                                p.tensor.raw_data()));
      RETURN_IF_ERROR(out.AddShard(name, piece, e.global_shape, p.offset));
    }
  }
  out.mutable_metadata() = host.metadata();
  return out;
}

class CheckpointerDeviceTest : public usine::testing::DeviceTest {};

TEST_P(CheckpointerDeviceTest, SavesAndLoadsPiecesOnTheDevice) {
  char tmpl[] = "/tmp/usine_checkpointer_dev_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  LocalCommunicator comm("test");
  CheckpointerOptions options;
  options.directory = dir;
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpointer::Create(comm, options));
  ASSERT_OK_AND_ASSIGN(StateDict host, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK_AND_ASSIGN(StateDict state, OnDevice(host, device()));
  ASSERT_OK(ckpt->Save(3, state));
  ASSERT_OK_AND_ASSIGN(StateDict sentinel, MakeModel(0, 1, Fill::kSentinel));
  ASSERT_OK_AND_ASSIGN(StateDict loaded, OnDevice(sentinel, device()));
  ASSERT_OK_AND_ASSIGN(int64_t step, ckpt->LoadLatest(loaded));
  EXPECT_EQ(step, 3);
  for (const auto& [name, e] : loaded.tensors()) {
    for (size_t i = 0; i < e.pieces.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(std::vector<char> bytes, usine::testing::ReadBytes(e.pieces[i].tensor));
      if (!bytes.empty()) {
        std::memcpy(sentinel.tensors().at(name).pieces[i].tensor.raw_data(), bytes.data(),
                    bytes.size());
      }
    }
  }
  EXPECT_EQ(CheckModel(sentinel), "");
  ckpt.reset();
  std::filesystem::remove_all(dir);
}

USINE_INSTANTIATE_DEVICE_TESTS(CheckpointerDeviceTest);

// In a child process with a file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG,
// as on a full disk): the save fails with an error, its partial file is removed, and the
// previous checkpoint stays `latest` and loads. Returns what went wrong, or "".
std::string DiskFullChild(const std::string& dir) {
  signal(SIGXFSZ, SIG_IGN);
  LocalCommunicator comm("child");
  CheckpointerOptions options;
  options.directory = dir;
  auto ckpt = Checkpointer::Create(comm, options);
  if (!ckpt.ok()) return std::string(ckpt.status().message());
  auto state = MakeModel(0, 1, Fill::kValues);
  if (!(*ckpt)->Save(1, *state).ok() || !(*ckpt)->Wait().ok()) return "first save failed";
  const auto first_size = std::filesystem::file_size(CheckpointPath(dir, 1));
  // The second checkpoint holds 4 MiB more; the limit lets only part of it be written.
  Tensor big = *Tensor::Empty({1 << 20}, DType::kF32);
  std::memset(big.raw_data(), 1, big.nbytes());
  if (!state->AddTensor("big", big).ok()) return "AddTensor";
  const rlimit limit{first_size + (1 << 20), first_size + (1 << 20)};
  setrlimit(RLIMIT_FSIZE, &limit);
  if (!(*ckpt)->Save(2, *state).ok()) return "second Save returned an error at once";
  const absl::Status failed = (*ckpt)->Wait();
  if (failed.ok()) return "the save past the limit succeeded";
  if (failed.message().find("step-00000002.h5.tmp") == absl::string_view::npos) {
    return absl::StrCat("error does not name the file: ", failed.message());
  }
  if (std::filesystem::exists(TemporaryCheckpointPath(dir, 2))) return "partial file left";
  if (std::filesystem::exists(CheckpointPath(dir, 2))) return "step 2 committed";
  auto loaded = MakeModel(0, 1, Fill::kSentinel);
  auto step = (*ckpt)->LoadLatest(*loaded);
  if (!step.ok() || *step != 1) return "latest is not step 1";
  return CheckModel(*loaded);
}

TEST_F(CheckpointerTest, DiskFullDuringASaveIsAnErrorAndKeepsThePreviousCheckpoint) {
  const std::string dir = dir_ + "/ckpt";
  const std::string report = dir_ + "/report";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string wrong = DiskFullChild(dir);
    struct rlimit none = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &none);
    std::ofstream(report) << wrong;
    _exit(wrong.empty() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::ifstream in(report);
  const std::string wrong((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << wrong;
}

}  // namespace
}  // namespace usine
