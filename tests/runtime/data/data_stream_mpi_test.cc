// Runs under mpirun at 2 and 4 ranks: DataStream across processes, laid out as DP x TP with
// TP = 2 (ranks 2d and 2d + 1 form DP rank d).
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/mpi/mpi_communicator.h"
#include "runtime/data/data_stream.h"
#include "runtime/data/token_shard.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

constexpr int64_t kVocab = 1 << 24;
constexpr int kTp = 2;

class DataStreamMpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(world_, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
    // One directory for all ranks: rank 0's pid names it.
    Tensor pid = testing::MakeTensor<int32_t>(Device::Cpu(), {1}, {::getpid()}).value();
    ASSERT_OK(world_->Broadcast(pid, 0));
    dir_ = std::filesystem::temp_directory_path() /
           ("usine_stream_mpi_" + std::to_string(testing::ReadTensor<int32_t>(pid).value()[0]));
    if (world_->rank() == 0) {
      std::filesystem::create_directories(dir_ / "base");
      std::filesystem::create_directories(dir_ / "incoming");
      for (int s = 1; s <= 3; ++s) Land("base", s, 41 + 6 * s);
    }
    ASSERT_OK(world_->Barrier());
  }
  void TearDown() override {
    EXPECT_OK(world_->Barrier());
    if (world_->rank() == 0) std::filesystem::remove_all(dir_);
  }

  // Token i of shard s is s * 100000 + i.
  void Land(const std::string& folder, int s, int tokens) {
    std::vector<int32_t> ids(tokens);
    for (int i = 0; i < tokens; ++i) ids[i] = s * 100000 + i;
    EXPECT_OK(WriteTokenShard((dir_ / folder / (std::to_string(s) + ".bin")).string(), ids,
                              TokenWidth::kUint32));
  }

  DataStreamOptions Options(int64_t batch, int dp_rank, int dp_size) {
    DataStreamOptions options;
    for (int s = 1; s <= 3; ++s) {
      options.shards.push_back((dir_ / "base" / (std::to_string(s) + ".bin")).string());
    }
    options.vocab_size = kVocab;
    options.batch_size = batch;
    options.seq_len = 4;
    options.dp_rank = dp_rank;
    options.dp_size = dp_size;
    return options;
  }

  // Every rank's first tokens of one batch, gathered in rank order.
  std::vector<int32_t> Gather(const Batch& batch) {
    std::vector<int32_t> tokens = testing::ReadTensor<int32_t>(batch.tokens).value();
    std::vector<int32_t> firsts;
    for (size_t i = 0; i < tokens.size(); i += batch.tokens.dim(1)) firsts.push_back(tokens[i]);
    Tensor send =
        testing::MakeTensor<int32_t>(Device::Cpu(), {batch.tokens.dim(0)}, firsts).value();
    Tensor recv = Tensor::Empty({send.numel() * world_->size()}, DType::kI32).value();
    EXPECT_OK(world_->AllGather(send, recv));
    return testing::ReadTensor<int32_t>(recv).value();
  }

  std::unique_ptr<MpiCommunicator> world_;
  std::filesystem::path dir_;
};

// The first tokens of `batches` batches of a single-process stream with batch `batch`.
std::vector<int32_t> Reference(DataStreamOptions options, int batches) {
  auto stream = DataStream::Open(options).value();
  std::vector<int32_t> firsts;
  for (int b = 0; b < batches; ++b) {
    Batch batch = stream->Next().value();
    std::vector<int32_t> tokens = testing::ReadTensor<int32_t>(batch.tokens).value();
    for (size_t i = 0; i < tokens.size(); i += batch.tokens.dim(1)) firsts.push_back(tokens[i]);
  }
  return firsts;
}

TEST_F(DataStreamMpiTest, DataParallelRanksReadDisjointSlicesAndTensorPeersTheSame) {
  const int dp_size = world_->size() / kTp, dp_rank = world_->rank() / kTp;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(Options(2, dp_rank, dp_size)));
  const std::vector<int32_t> expected = Reference(Options(2 * dp_size, 0, 1), 8);
  std::vector<int32_t> seen;
  for (int step = 0; step < 8; ++step) {
    ASSERT_OK_AND_ASSIGN(Batch batch, stream->Next());
    const std::vector<int32_t> all = Gather(batch);  // 2 samples per rank, ranks in order
    for (int d = 0; d < dp_size; ++d) {
      const std::vector<int32_t> tp0(all.begin() + 4 * d, all.begin() + 4 * d + 2);
      const std::vector<int32_t> tp1(all.begin() + 4 * d + 2, all.begin() + 4 * d + 4);
      EXPECT_EQ(tp0, tp1) << "dp rank " << d << " step " << step;
      seen.insert(seen.end(), tp0.begin(), tp0.end());
    }
  }
  EXPECT_EQ(seen, expected);
}

TEST_F(DataStreamMpiTest, WatchModeRanksAgreeOnEachLandedShard) {
  const int dp_size = world_->size() / kTp, dp_rank = world_->rank() / kTp;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> data,
                       world_->Split(0, world_->rank(), "data"));
  DataStreamOptions options = Options(1, dp_rank, dp_size);
  options.shards.clear();
  options.prefetch = 1;
  WatchOptions watch;
  watch.directory = (dir_ / "incoming").string();
  watch.poll_interval = absl::Milliseconds(20);
  options.watch = watch;
  options.comm = data.get();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));

  // Rank 0 lands three shards of 2 samples each while the ranks read: 6 samples in all.
  std::thread lander;
  if (world_->rank() == 0) {
    lander = std::thread([&] {
      for (int s = 11; s <= 13; ++s) {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        Land("incoming", s, 9);
      }
    });
  }
  std::vector<int32_t> seen;
  const int steps = 6 / dp_size;
  for (int step = 0; step < steps; ++step) {
    ASSERT_OK_AND_ASSIGN(Batch batch, stream->Next());
    const std::vector<int32_t> all = Gather(batch);
    for (int d = 0; d < dp_size; ++d) {
      EXPECT_EQ(all[2 * d], all[2 * d + 1]) << "tensor-parallel peers, dp rank " << d;
      seen.push_back(all[2 * d]);
    }
  }
  if (lander.joinable()) lander.join();
  std::sort(seen.begin(), seen.end());
  EXPECT_THAT(seen, ::testing::ElementsAre(1100000, 1100004, 1200000, 1200004, 1300000, 1300004));
  EXPECT_THAT(stream->state().consumed, ::testing::ElementsAre("11.bin", "12.bin", "13.bin"));
  stream->Close();  // every rank: they agree on closing in their next round
}

// What `call` returns, or a failure and the end of the job if it takes over 30 s: a hang
// would leave a thread that cannot be stopped.
template <typename Call>
auto WithinOrAbort(const char* what, Call call) {
  auto done = std::async(std::launch::async, std::move(call));
  if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << what << " still blocked after 30 s";
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return done.get();
}

// The ranks but 0 hold their first batch, so that their fill threads, with both buffers full,
// wait for a buffer, and close there. Rank 0 reads both batches of the one shard, so that its
// fill thread goes on to the round that picks the next shard: the others' closing must end
// that round (it used to wait there for them forever).
TEST_F(DataStreamMpiTest, ClosingWithFullBuffersEndsTheRoundAnotherRankWaitsIn) {
  const int dp_size = world_->size() / kTp, dp_rank = world_->rank() / kTp;
  if (world_->rank() == 0) Land("incoming", 21, 4 * 2 * dp_size + 1);  // 2 global batches
  ASSERT_OK(world_->Barrier());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> data,
                       world_->Split(0, world_->rank(), "data"));
  DataStreamOptions options = Options(1, dp_rank, dp_size);
  options.shards.clear();
  options.prefetch = 1;  // two buffers
  WatchOptions watch;
  watch.directory = (dir_ / "incoming").string();
  watch.poll_interval = absl::Milliseconds(20);
  options.watch = watch;
  options.comm = data.get();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));

  if (world_->rank() == 0) {
    for (int b = 0; b < 2; ++b) ASSERT_OK(stream->Next().status());
    const absl::Status third =
        WithinOrAbort("rank 0: Next() after the shard", [&] { return stream->Next().status(); });
    EXPECT_EQ(third.code(), absl::StatusCode::kCancelled) << third;
    WithinOrAbort("rank 0: Close()", [&] { stream->Close(); });
  } else {
    ASSERT_OK_AND_ASSIGN(Batch held, stream->Next());
    EXPECT_EQ(testing::ReadTensor<int32_t>(held.tokens).value()[0] / 100000, 21);
    WithinOrAbort("Close() with full buffers", [&] { stream->Close(); });
  }
}

// Rank 0 watches incoming/ and the other ranks view/: two views of one directory, as the
// hosts of a shared file system may have. Rank 0 lands shard 31 (9 tokens: 2 samples of 4)
// in incoming/, and `view` puts what the others see of it in view/ (or nothing).
class DataStreamViewsTest : public DataStreamMpiTest {
 protected:
  // A watched stream of batch 1 over `comm`: rank 0 watches incoming/, the others view/.
  DataStreamOptions ViewOptions(Communicator* comm, absl::Duration arrival_grace) {
    DataStreamOptions options = Options(1, world_->rank() / kTp, world_->size() / kTp);
    options.shards.clear();
    options.prefetch = 1;
    WatchOptions watch;
    watch.directory = (dir_ / (world_->rank() == 0 ? "incoming" : "view")).string();
    watch.poll_interval = absl::Milliseconds(20);
    watch.arrival_grace = arrival_grace;
    options.watch = watch;
    options.comm = comm;
    return options;
  }

  // This rank's first Next() status, which must come within 30 s (the stream's collectives
  // would wait 600 s for a rank that is not there).
  absl::Status FirstBatchStatus(const std::function<void(const std::filesystem::path&)>& view) {
    if (world_->rank() == 0) {
      std::filesystem::create_directories(dir_ / "view");
      view(dir_ / "view");
      Land("incoming", 31, 9);
    }
    EXPECT_OK(world_->Barrier());
    absl::StatusOr<std::unique_ptr<Communicator>> data = world_->Split(0, world_->rank(), "data");
    EXPECT_OK(data.status());
    absl::StatusOr<std::unique_ptr<DataStream>> stream =
        DataStream::Open(ViewOptions(data->get(), absl::Milliseconds(300)));
    EXPECT_OK(stream.status());
    if (!stream.ok()) return stream.status();  // Every rank: Open agrees.
    const absl::Status first = WithinOrAbort("Next()", [&] { return (*stream)->Next().status(); });
    WithinOrAbort("Close()", [&] { (*stream)->Close(); });
    return first;
  }
};

TEST_F(DataStreamViewsTest, TokenCountsThatDifferBetweenRanksEndTheStreamOnEveryRank) {
  const absl::Status first = FirstBatchStatus([&](const std::filesystem::path& view) {
    Land("view", 31, 13);  // 3 samples: the others would plan other batches than rank 0
  });
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_THAT(std::string(first.message()),
              ::testing::HasSubstr("rank 0 of data reads 9 tokens, rank 1 13 tokens"));
}

TEST_F(DataStreamViewsTest, AShardOnlyRankZeroCanReadEndsTheStreamOnEveryRank) {
  const absl::Status first = FirstBatchStatus(
      [&](const std::filesystem::path& view) { std::ofstream(view / "31.bin") << "not a shard"; });
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_THAT(std::string(first.message()), ::testing::HasSubstr("rank 1 a malformed file"));
}

TEST_F(DataStreamViewsTest, AShardMissingFromOneRanksViewEndsTheStreamOnEveryRank) {
  const absl::Status first = FirstBatchStatus([](const std::filesystem::path&) {});
  EXPECT_EQ(first.code(), absl::StatusCode::kDeadlineExceeded) << first;
  EXPECT_THAT(std::string(first.message()),
              ::testing::HasSubstr("did not appear here within 300ms"));
  if (world_->rank() == 0) {
    EXPECT_THAT(std::string(first.message()), ::testing::StartsWith("data rank 1: "));
  }
}

// A rank that waits for a shard to appear in its view (a lagging shared file system) stops
// waiting when its stream is closed (a stop signal): its Close() returns, and rank 0's Next()
// ends with kCancelled, long before the arrival grace (here 20 s) runs out. (Were a rank's
// fill thread still before its first round when it closes, that round would end the stream
// instead, as fast; the 1 s before the close makes the wait the likely case.)
TEST_F(DataStreamViewsTest, ClosingEndsTheWaitForAShardThatHasNotAppearedYet) {
  if (world_->rank() == 0) {
    std::filesystem::create_directories(dir_ / "view");
    Land("incoming", 31, 9);
  }
  ASSERT_OK(world_->Barrier());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> data,
                       world_->Split(0, world_->rank(), "data"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(ViewOptions(data.get(), absl::Seconds(20))));
  const absl::Time start = absl::Now();
  if (world_->rank() == 0) {
    const absl::Status first = WithinOrAbort("Next()", [&] { return stream->Next().status(); });
    EXPECT_EQ(first.code(), absl::StatusCode::kCancelled) << first;
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  WithinOrAbort("Close()", [&] { stream->Close(); });
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// A stream resumed in the middle of an incoming shard whose token count differs between the
// ranks' views fails Open on every rank: each rank would plan the rest of that shard from its
// own count. The state comes from a stream that read one of shard 31's two samples.
TEST_F(DataStreamViewsTest, AResumedShardThatDiffersBetweenRanksFailsOpenOnEveryRank) {
  if (world_->rank() == 0) {
    std::filesystem::create_directories(dir_ / "view");
    Land("incoming", 31, 9);
    Land("view", 31, 13);
  }
  ASSERT_OK(world_->Barrier());
  DataStreamOptions options = Options(1, 0, 1);
  options.shards.clear();
  WatchOptions watch;
  watch.directory = (dir_ / "incoming").string();
  watch.poll_interval = absl::Milliseconds(20);
  options.watch = watch;
  DataStreamState state;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> alone, DataStream::Open(options));
    ASSERT_OK(alone->Next().status());
    state = alone->state();
  }
  ASSERT_EQ(state.current, "31.bin");
  ASSERT_EQ(state.current_offset, 1);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> data,
                       world_->Split(0, world_->rank(), "data"));
  options.dp_rank = world_->rank() / kTp;
  options.dp_size = world_->size() / kTp;
  options.watch->directory = (dir_ / (world_->rank() == 0 ? "incoming" : "view")).string();
  options.comm = data.get();
  const absl::Status opened = DataStream::Open(options, &state).status();
  EXPECT_EQ(opened.code(), absl::StatusCode::kUnavailable) << opened;
  EXPECT_THAT(std::string(opened.message()),
              ::testing::HasSubstr("incoming shard 31.bin of 9 tokens, rank 1 "));
  EXPECT_THAT(std::string(opened.message()), ::testing::HasSubstr("31.bin of 13 tokens"));
}

// A base shard that one rank cannot read fails Open on every rank: the others' fill threads
// would otherwise start rounds that the failed rank never joins.
TEST_F(DataStreamMpiTest, ABaseShardOneRankCannotReadFailsOpenOnEveryRank) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> data,
                       world_->Split(0, world_->rank(), "data"));
  DataStreamOptions options = Options(1, world_->rank() / kTp, world_->size() / kTp);
  if (world_->rank() == world_->size() - 1) options.shards.push_back((dir_ / "gone.bin").string());
  WatchOptions watch;
  watch.directory = (dir_ / "incoming").string();
  watch.replay_ratio = 0.5;
  options.watch = watch;
  options.comm = data.get();
  const absl::Status opened = DataStream::Open(options).status();
  EXPECT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.message()), ::testing::HasSubstr("gone.bin")) << opened;
  if (world_->rank() != world_->size() - 1) {
    EXPECT_THAT(std::string(opened.message()),
                ::testing::StartsWith(absl::StrCat("data rank ", world_->size() - 1, ": ")));
  }
}

}  // namespace
}  // namespace usine
