#include "runtime/data/data_stream.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/allocator.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/internal/batch_planner.h"
#include "runtime/data/internal/incoming_shards.h"
#include "runtime/kernels/copy.h"

namespace usine {
namespace {

using data_internal::BatchPlanner;
using data_internal::GlobalBatch;

absl::Status CheckOptions(const DataStreamOptions& o) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("data stream options: ", parts...));
  };
  if (o.batch_size <= 0) return invalid("batch_size must be positive, not ", o.batch_size);
  if (o.seq_len <= 0) return invalid("seq_len must be positive, not ", o.seq_len);
  if (o.dp_size <= 0 || o.dp_rank < 0 || o.dp_rank >= o.dp_size) {
    return invalid("dp_rank ", o.dp_rank, " is not in [0, dp_size = ", o.dp_size, ")");
  }
  if (o.prefetch <= 0) return invalid("prefetch must be positive, not ", o.prefetch);
  if (o.vocab_size <= 0) return invalid("vocab_size must be positive, not ", o.vocab_size);
  if (!o.watch.has_value()) {
    if (o.shards.empty()) return invalid("no shards given");
    return absl::OkStatus();
  }
  if (!(o.watch->replay_ratio >= 0 && o.watch->replay_ratio < 1)) {
    return invalid("watch.replay_ratio must be in [0, 1), not ", o.watch->replay_ratio);
  }
  if (o.watch->poll_interval <= absl::ZeroDuration()) return invalid("watch.poll_interval <= 0");
  if (o.dp_size > 1 && o.comm == nullptr) {
    return invalid("watch mode with dp_size ", o.dp_size, " needs a communicator (comm)");
  }
  return absl::OkStatus();
}

// The base shards, opened and validated, sorted by file name (then path).
absl::StatusOr<std::vector<TokenShard>> OpenShards(std::vector<std::string> paths,
                                                   int64_t vocab_size) {
  auto key = [](const std::string& path) {
    return std::make_pair(std::filesystem::path(path).filename().string(), path);
  };
  std::sort(paths.begin(), paths.end(),
            [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
  std::vector<TokenShard> shards;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i > 0 && key(paths[i]).first == key(paths[i - 1]).first) {
      return absl::InvalidArgumentError(absl::StrCat("data stream: shards ", paths[i - 1], " and ",
                                                     paths[i], " have the same file name"));
    }
    ASSIGN_OR_RETURN(TokenShard shard, TokenShard::Open(paths[i], vocab_size));
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace

// What the prefetch thread and the consumer share: the host buffers, and the queues of free
// and filled ones. Batches on the cpu hold it too, so that a buffer can return to the pool
// even after the stream is gone.
struct BufferPool {
  struct Filled {
    int buffer;
    int64_t index;
    int64_t incoming_samples;
    DataStreamState state;
  };

  ~BufferPool() {
    for (void* memory : memory) PinnedHostAllocator().Deallocate(memory);
  }
  void Release(int buffer) {
    {
      std::lock_guard<std::mutex> lock(mu);
      free.push_back(buffer);
    }
    changed.notify_all();
  }

  std::vector<void*> memory;                 // i32[2, B, T] each: inputs, then targets
  std::vector<std::optional<Event>> copied;  // recorded after a device copy out of it
  std::mutex mu;
  std::condition_variable changed;
  std::deque<int> free;       // guarded by mu
  std::deque<Filled> filled;  // guarded by mu
  absl::Status error;         // guarded by mu: why the prefetch thread stopped
  bool stopped = false;       // guarded by mu
};

class DataStream::Impl {
 public:
  Impl(DataStreamOptions options, std::unique_ptr<BatchPlanner> planner,
       std::shared_ptr<BufferPool> pool)
      : options_(std::move(options)),
        planner_(std::move(planner)),
        pool_(std::move(pool)),
        state_(planner_->state()),
        samples_per_epoch_(planner_->base_samples_per_epoch()) {
    producer_ = std::thread([this] { Produce(); });
  }
  ~Impl() { Close(); }

  absl::StatusOr<Batch> Next(const Stream& stream);
  const DataStreamState& state() const { return state_; }
  int64_t samples_per_epoch() const { return samples_per_epoch_; }
  void Close();

 private:
  void Produce();
  absl::Status Fill(int buffer, const GlobalBatch& batch);
  void Stop(absl::Status status);

  const DataStreamOptions options_;
  std::unique_ptr<BatchPlanner> planner_;  // the prefetch thread's
  std::shared_ptr<BufferPool> pool_;
  std::atomic<bool> closing_{false};
  DataStreamState state_;  // the consumer's
  int64_t samples_per_epoch_;
  std::thread producer_;
};

void DataStream::Impl::Stop(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->stopped = true;
    pool_->error = std::move(status);
  }
  pool_->changed.notify_all();
}

absl::Status DataStream::Impl::Fill(int buffer, const GlobalBatch& batch) {
  if (std::optional<Event>& copied = pool_->copied[buffer]; copied.has_value()) {
    RETURN_IF_ERROR(copied->Synchronize());
  }
  const int64_t b = options_.batch_size;
  const int64_t t = options_.seq_len;
  int32_t* inputs = static_cast<int32_t*>(pool_->memory[buffer]);
  int32_t* targets = inputs + b * t;
  const int64_t first = options_.dp_rank * b;
  for (int64_t k = 0; k < b; ++k) {
    const data_internal::SampleSpan& span = batch.samples[first + k];
    span.shard->CopyTokens(span.begin, t, inputs + k * t);
    span.shard->CopyTokens(span.begin + 1, t, targets + k * t);
  }
  return absl::OkStatus();
}

void DataStream::Impl::Produce() {
  while (true) {
    absl::StatusOr<GlobalBatch> batch = planner_->Next(closing_);
    if (!batch.ok()) return Stop(batch.status());
    int buffer = 0;
    {
      std::unique_lock<std::mutex> lock(pool_->mu);
      pool_->changed.wait(lock, [&] { return !pool_->free.empty() || closing_; });
      if (closing_) break;
      buffer = pool_->free.front();
      pool_->free.pop_front();
    }
    if (absl::Status s = Fill(buffer, *batch); !s.ok()) return Stop(s);
    {
      std::lock_guard<std::mutex> lock(pool_->mu);
      pool_->filled.push_back(
          {buffer, batch->state.batches - 1, batch->state.incoming_samples, batch->state});
    }
    pool_->changed.notify_all();
  }
  Stop(absl::CancelledError("data stream closed"));
}

absl::StatusOr<Batch> DataStream::Impl::Next(const Stream& stream) {
  BufferPool::Filled filled;
  {
    std::unique_lock<std::mutex> lock(pool_->mu);
    pool_->changed.wait(lock, [&] { return !pool_->filled.empty() || pool_->stopped; });
    if (pool_->filled.empty()) return pool_->error;
    filled = std::move(pool_->filled.front());
    pool_->filled.pop_front();
  }
  const int64_t b = options_.batch_size;
  const int64_t t = options_.seq_len;
  Batch batch;
  batch.index = filled.index;
  batch.incoming_samples = filled.incoming_samples;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Wrap(pool_->memory[filled.buffer], {2, b, t}, DType::kI32,
                                             Device::Cpu()));
  Tensor both = host;
  if (options_.device.is_cpu()) {
    // The buffer returns to the pool when the last copy of the Batch is gone.
    batch.buffer =
        std::shared_ptr<void>(pool_->memory[filled.buffer],
                              [pool = pool_, id = filled.buffer](void*) { pool->Release(id); });
  } else {
    absl::Status copied = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(both,
                       Tensor::Empty({2, b, t}, DType::kI32, options_.device, stream.handle()));
      RETURN_IF_ERROR(Copy(host, both, stream));
      std::optional<Event>& event = pool_->copied[filled.buffer];
      if (!event.has_value()) {
        ASSIGN_OR_RETURN(Event created, Event::Create(options_.device));
        event.emplace(std::move(created));
      }
      return event->Record(stream);
    }();
    pool_->Release(filled.buffer);
    RETURN_IF_ERROR(copied);
  }
  ASSIGN_OR_RETURN(Tensor inputs, both.Slice(0, 1));
  ASSIGN_OR_RETURN(Tensor targets, both.Slice(1, 2));
  ASSIGN_OR_RETURN(batch.inputs, inputs.Reshape({b, t}));
  ASSIGN_OR_RETURN(batch.targets, targets.Reshape({b, t}));
  state_ = std::move(filled.state);
  return batch;
}

void DataStream::Impl::Close() {
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    closing_ = true;
  }
  pool_->changed.notify_all();
  if (producer_.joinable()) producer_.join();
}

absl::StatusOr<std::unique_ptr<DataStream>> DataStream::Open(DataStreamOptions options,
                                                             const DataStreamState* resume) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(std::vector<TokenShard> base, OpenShards(options.shards, options.vocab_size));

  std::unique_ptr<data_internal::IncomingShards> incoming;
  if (options.watch.has_value()) {
    std::vector<std::string> taken;
    if (resume != nullptr) {
      taken = resume->consumed;
      if (!resume->current.empty()) taken.push_back(resume->current);
    }
    data_internal::IncomingOptions watch;
    watch.directory = options.watch->directory;
    watch.method = options.watch->method;
    watch.poll_interval = options.watch->poll_interval;
    watch.vocab_size = options.vocab_size;
    watch.comm = options.comm;
    ASSIGN_OR_RETURN(incoming, data_internal::IncomingShards::Open(std::move(watch), taken));
  }
  data_internal::PlannerOptions plan;
  plan.global_batch = options.batch_size * options.dp_size;
  plan.seq_len = options.seq_len;
  plan.seed = options.seed;
  plan.shuffle = options.shuffle;
  if (options.watch.has_value()) {
    plan.replay_ratio = options.watch->replay_ratio;
    plan.replay_when_idle = options.watch->replay_when_idle;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BatchPlanner> planner,
                   BatchPlanner::Create(plan, std::move(base), std::move(incoming), resume));

  auto pool = std::make_shared<BufferPool>();
  const size_t bytes = 2 * options.batch_size * options.seq_len * sizeof(int32_t);
  for (int i = 0; i <= options.prefetch; ++i) {  // one more than prefetch: the consumer's
    ASSIGN_OR_RETURN(void* memory, PinnedHostAllocator().Allocate(bytes, nullptr));
    pool->memory.push_back(memory);
    pool->free.push_back(i);
  }
  pool->copied.resize(pool->memory.size());
  return std::unique_ptr<DataStream>(new DataStream(
      std::make_unique<Impl>(std::move(options), std::move(planner), std::move(pool))));
}

DataStream::DataStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DataStream::~DataStream() = default;

absl::StatusOr<Batch> DataStream::Next(const Stream& stream) { return impl_->Next(stream); }
const DataStreamState& DataStream::state() const { return impl_->state(); }
int64_t DataStream::samples_per_epoch() const { return impl_->samples_per_epoch(); }
void DataStream::Close() { impl_->Close(); }

}  // namespace usine
