#include "runtime/data/data_stream.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/device.h"
#include "runtime/core/stream.h"
#include "runtime/data/token_shard.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Token i of shard s is s * kShardStride + i, so a sample names its shard and position by
// its first token, and a target is its input plus one.
constexpr int32_t kShardStride = 100000;
constexpr int64_t kVocab = 1 << 24;

class DataStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("usine_stream_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "base");
    std::filesystem::create_directories(dir_ / "incoming");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A shard of `tokens` tokens numbered from s * kShardStride, in `folder`.
  std::string WriteShard(const std::string& folder, const std::string& name, int s, int tokens) {
    std::vector<int32_t> ids(tokens);
    for (int i = 0; i < tokens; ++i) ids[i] = s * kShardStride + i;
    const std::string path = (dir_ / folder / name).string();
    EXPECT_OK(WriteTokenShard(path, ids, TokenWidth::kUint32));
    return path;
  }

  DataStreamOptions BaseOptions(int64_t batch, int64_t seq_len) {
    DataStreamOptions options;
    // Samples of T = 4: shard 1 has (41 - 1) / 4 = 10, shard 2 has 7, shard 3 has 5.
    options.shards = {WriteShard("base", "c.bin", 3, 22), WriteShard("base", "a.bin", 1, 41),
                      WriteShard("base", "b.bin", 2, 30)};
    options.vocab_size = kVocab;
    options.batch_size = batch;
    options.seq_len = seq_len;
    options.prefetch = 2;
    return options;
  }

  std::filesystem::path dir_;
};

// The first token of each sample of a batch, after checking that each row holds T+1
// consecutive tokens (which the numbering makes increasing by one).
std::vector<int32_t> Firsts(const Batch& batch) {
  EXPECT_EQ(batch.tokens.dtype(), DType::kI32);
  std::vector<int32_t> tokens = *testing::ReadTensor<int32_t>(batch.tokens);
  const int64_t row = batch.tokens.dim(1);
  std::vector<int32_t> firsts;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i % row == 0) {
      firsts.push_back(tokens[i]);
    } else {
      EXPECT_EQ(tokens[i], tokens[i - 1] + 1) << "element " << i;
    }
  }
  return firsts;
}

// The first tokens of `batches` batches of `stream`.
std::vector<int32_t> Take(DataStream& stream, int batches) {
  std::vector<int32_t> firsts;
  for (int i = 0; i < batches; ++i) {
    absl::StatusOr<Batch> batch = stream.Next();
    EXPECT_OK(batch.status());
    if (!batch.ok()) break;
    for (int32_t f : Firsts(*batch)) firsts.push_back(f);
  }
  return firsts;
}

std::set<int32_t> AllSampleStarts() {
  std::set<int32_t> starts;
  for (auto [s, n] : {std::pair{1, 10}, {2, 7}, {3, 5}}) {
    for (int j = 0; j < n; ++j) starts.insert(s * kShardStride + 4 * j);
  }
  return starts;
}

TEST_F(DataStreamTest, EachEpochVisitsEverySampleOnce) {
  DataStreamOptions options = BaseOptions(/*batch=*/2, /*seq_len=*/4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  ASSERT_EQ(stream->samples_per_epoch(), 22);
  const std::vector<int32_t> two_epochs = Take(*stream, 22);  // 44 samples
  const std::vector<int32_t> first(two_epochs.begin(), two_epochs.begin() + 22);
  const std::vector<int32_t> second(two_epochs.begin() + 22, two_epochs.end());
  EXPECT_EQ(std::set<int32_t>(first.begin(), first.end()), AllSampleStarts());
  EXPECT_EQ(std::set<int32_t>(second.begin(), second.end()), AllSampleStarts());
  EXPECT_NE(first, second) << "each epoch is shuffled anew";
  EXPECT_EQ(stream->state().epoch, 2);
  EXPECT_EQ(stream->state().offset, 0);
  EXPECT_EQ(stream->state().batches, 22);
}

TEST_F(DataStreamTest, UnshuffledVisitsShardsByFileNameInFileOrder) {
  DataStreamOptions options = BaseOptions(2, 4);
  options.shuffle = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  const std::vector<int32_t> firsts = Take(*stream, 11);
  const std::set<int32_t> starts = AllSampleStarts();
  const std::vector<int32_t> expected(starts.begin(), starts.end());
  EXPECT_THAT(firsts, ElementsAreArray(expected));  // a.bin (1), b.bin (2), c.bin (3)
}

TEST_F(DataStreamTest, FillThreadsDoNotChangeTheBatches) {
  DataStreamOptions options = BaseOptions(3, 4);
  options.fill_threads = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> one, DataStream::Open(options));
  options.fill_threads = 4;
  options.prefetch = 8;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> four, DataStream::Open(options));
  for (int b = 0; b < 40; ++b) {
    ASSERT_OK_AND_ASSIGN(Batch x, one->Next());
    ASSERT_OK_AND_ASSIGN(Batch y, four->Next());
    EXPECT_EQ(x.index, b);
    EXPECT_EQ(y.index, b);
    EXPECT_EQ(*testing::ReadTensor<int32_t>(x.tokens), *testing::ReadTensor<int32_t>(y.tokens));
    EXPECT_EQ(one->state(), four->state());
  }
}

TEST_F(DataStreamTest, OrderIsAFunctionOfTheSeed) {
  DataStreamOptions options = BaseOptions(2, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> a, DataStream::Open(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> b, DataStream::Open(options));
  options.seed = 7;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> c, DataStream::Open(options));
  const std::vector<int32_t> sa = Take(*a, 11);
  EXPECT_EQ(sa, Take(*b, 11));
  EXPECT_NE(sa, Take(*c, 11));
}

TEST_F(DataStreamTest, DataParallelRanksSplitEachGlobalBatchWhateverTheirNumber) {
  DataStreamOptions options = BaseOptions(4, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> one, DataStream::Open(options));
  const std::vector<int32_t> global = Take(*one, 10);  // 40 samples: crosses an epoch

  for (int dp : {2, 4}) {
    std::vector<std::unique_ptr<DataStream>> ranks;
    for (int r = 0; r < dp; ++r) {
      DataStreamOptions rank_options = options;
      rank_options.batch_size = 4 / dp;
      rank_options.dp_rank = r;
      rank_options.dp_size = dp;
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(rank_options));
      ranks.push_back(std::move(stream));
    }
    std::vector<int32_t> joined;
    for (int step = 0; step < 10; ++step) {
      for (auto& rank : ranks) {
        for (int32_t f : Take(*rank, 1)) joined.push_back(f);
      }
    }
    EXPECT_EQ(joined, global) << "dp " << dp;
  }
}

TEST_F(DataStreamTest, ResumingTwiceInARowContinuesTheSameBatches) {
  DataStreamOptions options = BaseOptions(3, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> reference, DataStream::Open(options));
  const std::vector<int32_t> expected = Take(*reference, 12);

  std::vector<int32_t> resumed;
  std::string saved;
  for (int leg : {5, 4, 3}) {
    absl::StatusOr<DataStreamState> state = DataStreamState::FromJson(saved);
    if (!saved.empty()) ASSERT_OK(state.status());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                         DataStream::Open(options, saved.empty() ? nullptr : &*state));
    for (int32_t f : Take(*stream, leg)) resumed.push_back(f);
    saved = stream->state().ToJson();
  }
  EXPECT_EQ(resumed, expected);
}

TEST_F(DataStreamTest, ResumingAtAnotherDataParallelSizeSkipsAndRepeatsNothing) {
  DataStreamOptions options = BaseOptions(2, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> reference, DataStream::Open(options));
  const std::vector<int32_t> expected = Take(*reference, 20);  // 40 samples

  // 3 global batches of 4 samples at dp 2 (B 2), then 7 of 4 samples at dp 4 (B 1).
  std::vector<int32_t> seen;
  DataStreamState state;
  {
    std::vector<std::unique_ptr<DataStream>> ranks;
    for (int r = 0; r < 2; ++r) {
      DataStreamOptions o = options;
      o.dp_rank = r;
      o.dp_size = 2;
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> s, DataStream::Open(o));
      ranks.push_back(std::move(s));
    }
    for (int step = 0; step < 3; ++step) {
      for (auto& rank : ranks) {
        for (int32_t f : Take(*rank, 1)) seen.push_back(f);
      }
    }
    EXPECT_EQ(ranks[0]->state(), ranks[1]->state()) << "the state is global";
    state = ranks[1]->state();
  }
  std::vector<std::unique_ptr<DataStream>> ranks;
  for (int r = 0; r < 4; ++r) {
    DataStreamOptions o = options;
    o.batch_size = 1;
    o.dp_rank = r;
    o.dp_size = 4;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> s, DataStream::Open(o, &state));
    ranks.push_back(std::move(s));
  }
  for (int step = 0; step < 7; ++step) {
    for (auto& rank : ranks) {
      for (int32_t f : Take(*rank, 1)) seen.push_back(f);
    }
  }
  EXPECT_EQ(seen, expected);
}

TEST_F(DataStreamTest, RefusesAStateOfAnotherSeedLengthOrDataset) {
  DataStreamOptions options = BaseOptions(2, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  Take(*stream, 2);
  const DataStreamState state = stream->state();
  stream.reset();

  DataStreamOptions other_seed = options;
  other_seed.seed = 99;
  EXPECT_THAT(DataStream::Open(other_seed, &state).status().message(), HasSubstr("seed"));
  DataStreamOptions other_length = options;
  other_length.seq_len = 5;
  EXPECT_THAT(DataStream::Open(other_length, &state).status().message(), HasSubstr("seq_len"));
  DataStreamOptions fewer_shards = options;
  fewer_shards.shards.pop_back();
  EXPECT_THAT(DataStream::Open(fewer_shards, &state).status().message(), HasSubstr("base dataset"));
}

TEST_F(DataStreamTest, StateRoundTripsThroughJsonAndNamesBadFields) {
  DataStreamState state;
  state.seed = 0xFFFFFFFFFFFFFFF1ULL;  // beyond what a double holds exactly
  state.dataset = 0x8000000000000001ULL;
  state.seq_len = 1024;
  state.epoch = 3;
  state.offset = 17;
  state.consumed = {"a.bin", "b.bin"};
  state.current = "c.bin";
  state.current_offset = 5;
  ASSERT_OK_AND_ASSIGN(DataStreamState back, DataStreamState::FromJson(state.ToJson()));
  EXPECT_EQ(back, state);
  EXPECT_THAT(DataStreamState::FromJson("{").status().message(), HasSubstr("not a JSON object"));
  std::string broken = state.ToJson();
  broken.replace(broken.find("\"epoch\":3"), 9, "\"epoch\":\"x\"");
  EXPECT_THAT(DataStreamState::FromJson(broken).status().message(), HasSubstr("\"epoch\""));
}

TEST_F(DataStreamTest, BadOptionsAndShardsAreErrorsNamingThem) {
  DataStreamOptions options = BaseOptions(2, 4);
  options.dp_rank = 2;
  options.dp_size = 2;
  EXPECT_THAT(DataStream::Open(options).status().message(), HasSubstr("dp_rank 2"));
  options = BaseOptions(2, 64);
  EXPECT_THAT(DataStream::Open(options).status().message(), HasSubstr("T+1 = 65 tokens"));
  options = BaseOptions(2, 4);
  std::ofstream(options.shards[0], std::ios::binary | std::ios::trunc) << "not a shard";
  EXPECT_THAT(DataStream::Open(options).status().message(), HasSubstr(options.shards[0]));
}

TEST_F(DataStreamTest, BatchesAreRowsOfTPlusOneTokensIn16BitsForSmallVocabularies) {
  DataStreamOptions options;
  std::vector<int32_t> ids(100);
  for (int i = 0; i < 100; ++i) ids[i] = 65535 - i;  // the widest 16-bit ids
  options.shards = {(dir_ / "base" / "u32.bin").string(), (dir_ / "base" / "u16.bin").string()};
  ASSERT_OK(WriteTokenShard(options.shards[0], ids, TokenWidth::kUint32));
  ASSERT_OK(WriteTokenShard(options.shards[1], ids, TokenWidth::kUint16));
  options.vocab_size = 65536;
  options.batch_size = 3;
  options.seq_len = 8;
  options.shuffle = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  for (int b = 0; b < 8; ++b) {  // 12 samples per shard: both shards, both widths
    ASSERT_OK_AND_ASSIGN(Batch batch, stream->Next());
    ASSERT_EQ(batch.tokens.dtype(), DType::kU16);
    ASSERT_EQ(batch.tokens.shape(), Shape({3, 9}));
    std::vector<uint16_t> tokens = *testing::ReadTensor<uint16_t>(batch.tokens);
    for (int r = 0; r < 3; ++r) {
      const int sample = (3 * b + r) % 12;  // file order within each shard of 12 samples
      for (int k = 0; k < 9; ++k) {
        EXPECT_EQ(tokens[r * 9 + k], 65535 - (8 * sample + k)) << "batch " << b << " row " << r;
      }
    }
  }
}

TEST_F(DataStreamTest, HeldBatchesKeepTheirTokensUntilReleased) {
  DataStreamOptions options = BaseOptions(2, 4);
  options.shuffle = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  ASSERT_OK_AND_ASSIGN(Batch first, stream->Next());
  ASSERT_OK_AND_ASSIGN(Batch second, stream->Next());
  const std::vector<int32_t> before = Firsts(first);
  Take(*stream, 1);  // the prefetch thread refills the other buffers meanwhile
  EXPECT_EQ(Firsts(first), before);
  EXPECT_EQ(Firsts(first)[0], 1 * kShardStride);
  EXPECT_EQ(Firsts(second)[0], 1 * kShardStride + 8);
}

// On a GPU: the batches are device tensors, copied on the caller's stream, equal to the
// cpu stream's, and the host buffers are refilled only after their copies (prefetch 1, so
// every buffer is reused while earlier batches may still be copying).
class DataStreamGpuTest : public DataStreamTest {};

TEST_F(DataStreamGpuTest, BatchesOnTheDeviceMatchTheCpuStream) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  DataStreamOptions options = BaseOptions(3, 4);
  options.prefetch = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> cpu, DataStream::Open(options));
  options.device = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> gpu, DataStream::Open(options));
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(Device::Cuda(0)));
  std::vector<Batch> on_device;
  for (int b = 0; b < 20; ++b) {
    ASSERT_OK_AND_ASSIGN(Batch batch, gpu->Next(stream));
    EXPECT_TRUE(batch.tokens.device().is_cuda());
    on_device.push_back(std::move(batch));
  }
  ASSERT_OK(stream.Synchronize());
  for (int b = 0; b < 20; ++b) {
    ASSERT_OK_AND_ASSIGN(Batch expected, cpu->Next());
    EXPECT_EQ(*testing::ReadTensor<int32_t>(on_device[b].tokens),
              *testing::ReadTensor<int32_t>(expected.tokens))
        << "batch " << b;
  }
}

// Without a stream, a batch for the GPU is copied on the device's default stream (the trainer's
// and the evaluation's call); a stream of another device is refused before any batch is taken.
TEST_F(DataStreamGpuTest, WithoutAStreamTheCopyGoesOnTheDevicesDefaultStream) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  DataStreamOptions options = BaseOptions(3, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> cpu, DataStream::Open(options));
  options.device = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> gpu, DataStream::Open(options));
  const absl::Status refused = gpu->Next(Stream::Host()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("copy stream"));
  ASSERT_OK_AND_ASSIGN(Batch batch, gpu->Next());
  ASSERT_OK(Stream::Default(Device::Cuda(0)).Synchronize());
  ASSERT_OK_AND_ASSIGN(Batch expected, cpu->Next());
  EXPECT_EQ(*testing::ReadTensor<int32_t>(batch.tokens),
            *testing::ReadTensor<int32_t>(expected.tokens));
}

// ---- Watch mode ----

class WatchTest : public DataStreamTest {
 protected:
  DataStreamOptions WatchOptionsFor(bool replay_when_idle, double ratio, bool with_base) {
    DataStreamOptions options = with_base ? BaseOptions(2, 4) : DataStreamOptions{};
    options.vocab_size = kVocab;
    options.batch_size = 2;
    options.seq_len = 4;
    options.prefetch = 1;
    options.shuffle = false;
    WatchOptions watch;
    watch.directory = (dir_ / "incoming").string();
    watch.replay_ratio = ratio;
    watch.replay_when_idle = replay_when_idle;
    watch.poll_interval = absl::Milliseconds(20);
    options.watch = watch;
    return options;
  }
};

TEST_F(WatchTest, TakesEachLandedShardOnceInNameOrderAndIgnoresPartialFiles) {
  WriteShard("incoming", "002.bin", 12, 17);  // 4 samples
  WriteShard("incoming", "001.bin", 11, 9);   // 2 samples
  std::ofstream((dir_ / "incoming" / "003.bin.tmp.42").string()) << "being written";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(false, 0, /*with_base=*/false)));
  const std::vector<int32_t> firsts = Take(*stream, 3);
  EXPECT_THAT(firsts, ElementsAreArray({1100000, 1100004, 1200000, 1200004, 1200008, 1200012}));
  EXPECT_THAT(stream->state().consumed, ElementsAreArray({"001.bin", "002.bin"}));
  EXPECT_EQ(stream->state().incoming_samples, 6);
}

TEST_F(WatchTest, WaitsForTheNextShardToLand) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(false, 0, false)));
  std::future<std::vector<int32_t>> next =
      std::async(std::launch::async, [&] { return Take(*stream, 1); });
  EXPECT_EQ(next.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  WriteShard("incoming", "late.bin", 5, 9);
  ASSERT_EQ(next.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(next.get(), ElementsAreArray({500000, 500004}));
}

TEST_F(WatchTest, PollingFindsShardsToo) {  // as on a network file system
  DataStreamOptions options = WatchOptionsFor(false, 0, false);
  options.watch->method = WatchMethod::kPolling;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream, DataStream::Open(options));
  std::future<std::vector<int32_t>> next =
      std::async(std::launch::async, [&] { return Take(*stream, 1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  WriteShard("incoming", "polled.bin", 6, 9);
  ASSERT_EQ(next.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(next.get(), ElementsAreArray({600000, 600004}));
}

TEST_F(WatchTest, CloseEndsAWait) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(false, 0, false)));
  std::future<absl::Status> next =
      std::async(std::launch::async, [&] { return stream->Next().status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stream->Close();
  ASSERT_EQ(next.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(next.get().code(), absl::StatusCode::kCancelled);
}

TEST_F(WatchTest, ConsumedShardsStayConsumedAcrossARestart) {
  WriteShard("incoming", "a.bin", 21, 13);  // 3 samples
  WriteShard("incoming", "b.bin", 22, 21);  // 5 samples
  DataStreamOptions options = WatchOptionsFor(false, 0, false);
  options.shuffle = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> reference, DataStream::Open(options));
  WriteShard("incoming", "c.bin", 23, 9);  // 2 samples
  const std::vector<int32_t> expected = Take(*reference, 5);
  reference.reset();

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> first, DataStream::Open(options));
  std::vector<int32_t> seen = Take(*first, 2);  // a.bin and one sample of b.bin
  const DataStreamState state = first->state();
  first.reset();
  EXPECT_THAT(state.consumed, ElementsAreArray({"a.bin"}));
  EXPECT_EQ(state.current, "b.bin");
  EXPECT_EQ(state.current_offset, 1);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> second, DataStream::Open(options, &state));
  for (int32_t f : Take(*second, 3)) seen.push_back(f);
  EXPECT_EQ(seen, expected);
  EXPECT_THAT(second->state().consumed, ElementsAreArray({"a.bin", "b.bin", "c.bin"}));
}

TEST_F(WatchTest, ReplayRatioMixesInBaseSamples) {
  WriteShard("incoming", "new.bin", 40, 81);  // 20 samples
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(false, 0.25, /*with_base=*/true)));
  const std::vector<int32_t> firsts = Take(*stream, 8);  // 16 samples
  const int replayed =
      std::count_if(firsts.begin(), firsts.end(), [](int32_t f) { return f / kShardStride != 40; });
  EXPECT_EQ(replayed, 4);
  EXPECT_EQ(stream->state().replay_samples, 4);
  EXPECT_EQ(stream->state().incoming_samples, 12);
}

TEST_F(WatchTest, ReplaysWhileIdleWhenConfigured) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(true, 0, true)));
  const std::vector<int32_t> firsts = Take(*stream, 3);
  for (int32_t f : firsts) EXPECT_THAT(f / kShardStride, ::testing::AnyOf(1, 2, 3));  // base
  EXPECT_EQ(stream->state().replay_samples, 6);
  WriteShard("incoming", "new.bin", 40, 9);
  // Batches planned before the shard landed are replays; it is taken in the next ones.
  const std::vector<int32_t> later = Take(*stream, 5);
  EXPECT_THAT(later, ::testing::Contains(4000000));
  EXPECT_THAT(later, ::testing::Contains(4000004));
}

TEST_F(WatchTest, SkipsAndRecordsAMalformedShard) {
  std::ofstream((dir_ / "incoming" / "001.bin").string()) << "garbage, not a shard";
  WriteShard("incoming", "002.bin", 12, 9);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataStream> stream,
                       DataStream::Open(WatchOptionsFor(false, 0, false)));
  EXPECT_THAT(Take(*stream, 1), ElementsAreArray({1200000, 1200004}));
  EXPECT_THAT(stream->state().consumed, ElementsAreArray({"001.bin", "002.bin"}));
}

}  // namespace
}  // namespace usine
