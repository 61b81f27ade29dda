#include "runtime/data/data_stream.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/internal/batch_buffers.h"
#include "runtime/data/internal/batch_planner.h"
#include "runtime/data/internal/incoming_shards.h"
#include "runtime/kernels/copy.h"

namespace usine {
namespace {

using data_internal::BatchBuffers;
using data_internal::BatchPlanner;
using data_internal::GlobalBatch;

// The narrowest type that holds every id: a batch is then one copy per row from a uint16 shard.
DType TokenDType(int64_t vocab_size) { return vocab_size <= 65536 ? DType::kU16 : DType::kI32; }

absl::Status CheckOptions(const DataStreamOptions& o) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("data stream options: ", parts...));
  };
  if (o.batch_size <= 0) return invalid("batch_size must be positive, not ", o.batch_size);
  if (o.seq_len <= 0) return invalid("seq_len must be positive, not ", o.seq_len);
  if (o.dp_size <= 0 || o.dp_rank < 0 || o.dp_rank >= o.dp_size) {
    return invalid("dp_rank ", o.dp_rank, " is not in [0, dp_size = ", o.dp_size, ")");
  }
  if (o.prefetch <= 0 || o.prefetch >= BatchBuffers::kMaxBuffers) {
    return invalid("prefetch must be in [1, ", BatchBuffers::kMaxBuffers - 1, "], not ",
                   o.prefetch);
  }
  if (o.vocab_size <= 0) return invalid("vocab_size must be positive, not ", o.vocab_size);
  if (o.fill_threads < 1) return invalid("fill_threads must be positive, not ", o.fill_threads);
  if (!o.watch.has_value()) {
    if (o.shards.empty()) return invalid("no shards given");
    return absl::OkStatus();
  }
  if (!(o.watch->replay_ratio >= 0 && o.watch->replay_ratio < 1)) {
    return invalid("watch.replay_ratio must be in [0, 1), not ", o.watch->replay_ratio);
  }
  if (o.watch->poll_interval <= absl::ZeroDuration()) return invalid("watch.poll_interval <= 0");
  if (o.watch->arrival_grace < absl::ZeroDuration()) return invalid("watch.arrival_grace < 0");
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

class DataStream::Impl {
 public:
  Impl(DataStreamOptions options, std::unique_ptr<BatchPlanner> planner,
       std::shared_ptr<BatchBuffers> buffers)
      : options_(std::move(options)),
        planner_(std::move(planner)),
        buffers_(std::move(buffers)),
        token_dtype_(TokenDType(options_.vocab_size)),
        state_(planner_->state()),
        samples_per_epoch_(planner_->base_samples_per_epoch()) {
    for (int i = 0; i < std::min(options_.fill_threads, options_.prefetch); ++i) {
      fillers_.emplace_back([this] { Produce(); });
    }
  }
  ~Impl() { Close(); }

  absl::StatusOr<Batch> Next(const Stream& stream);
  Device device() const { return options_.device; }
  const DataStreamState& state() const { return state_; }
  int64_t samples_per_epoch() const { return samples_per_epoch_; }
  void Close();

 private:
  void Produce();
  // Ends planning for good, taking this rank's part in the agreement round the other ranks
  // wait in or will reach (BatchPlanner::Abandon), unless planning already stopped.
  void StopPlanning();
  absl::Status Fill(int buffer, const GlobalBatch& batch);
  // Copies the host buffer to the device on `stream`; the buffer is free once that is done.
  absl::Status CopyToDevice(const Tensor& host, int buffer, const Stream& stream, Tensor* device);

  const DataStreamOptions options_;
  std::mutex plan_mu_;
  std::unique_ptr<BatchPlanner> planner_;  // guarded by plan_mu_
  bool planning_stopped_ = false;          // guarded by plan_mu_: an error or closing
  std::mutex close_mu_;                    // Close() joins fillers_ under it
  std::shared_ptr<BatchBuffers> buffers_;
  const DType token_dtype_;
  std::atomic<bool> closing_{false};
  DataStreamState state_;  // the consumer's
  int64_t samples_per_epoch_;
  std::vector<std::thread> fillers_;
};

template <typename Id>
void CopyRows(absl::Span<const data_internal::SampleSpan> samples, int64_t row_tokens, Id* out) {
  // Samples lie at random places of the shards: without a hint each row would wait on
  // memory (TLB and DRAM misses) before the hardware prefetcher catches on.
  constexpr size_t kAhead = 4;
  for (size_t i = 0; i < std::min(kAhead, samples.size()); ++i) {
    samples[i].shard->Prefetch(samples[i].begin, row_tokens);
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    if (i + kAhead < samples.size()) {
      samples[i + kAhead].shard->Prefetch(samples[i + kAhead].begin, row_tokens);
    }
    samples[i].shard->CopyTokens(samples[i].begin, row_tokens, out);
    out += row_tokens;
  }
}

absl::Status DataStream::Impl::Fill(int buffer, const GlobalBatch& batch) {
  if (std::optional<Event>& copied = buffers_->copied(buffer); copied.has_value()) {
    RETURN_IF_ERROR(copied->Synchronize());
  }
  const int64_t b = options_.batch_size;
  const auto mine = absl::MakeConstSpan(batch.samples).subspan(options_.dp_rank * b, b);
  void* out = buffers_->memory(buffer);
  if (token_dtype_ == DType::kU16) {
    CopyRows(mine, options_.seq_len + 1, static_cast<uint16_t*>(out));
  } else {
    CopyRows(mine, options_.seq_len + 1, static_cast<int32_t*>(out));
  }
  return absl::OkStatus();
}

// A fill thread: takes a free buffer, then the next batch number and its samples from the
// planner (in order, under plan_mu_), then fills the buffer alongside the other threads.
void DataStream::Impl::Produce() {
  GlobalBatch batch;
  while (true) {
    const std::optional<int> buffer = buffers_->AcquireFree(closing_);
    if (!buffer.has_value()) break;
    {
      std::lock_guard<std::mutex> lock(plan_mu_);
      absl::Status planned = planning_stopped_ ? absl::CancelledError("data stream stopped")
                                               : planner_->Next(closing_, &batch);
      if (!planned.ok()) {
        // The planner failed, or its round ended in closing: there is no round to go on to.
        planning_stopped_ = true;
        buffers_->Release(*buffer);
        return buffers_->Stop(std::move(planned));
      }
    }
    if (absl::Status s = Fill(*buffer, batch); !s.ok()) {
      buffers_->Stop(std::move(s));
      break;
    }
    buffers_->Publish(
        {*buffer, batch.state.batches - 1, batch.state.incoming_samples, batch.state});
  }
  buffers_->Stop(absl::CancelledError("data stream closed"));  // unless stopped already
  // Closing, or a fill error: a thread waiting for a buffer has not entered the next round,
  // which the other ranks may already be waiting in.
  StopPlanning();
}

void DataStream::Impl::StopPlanning() {
  std::lock_guard<std::mutex> lock(plan_mu_);
  if (planning_stopped_) return;
  planning_stopped_ = true;
  if (absl::Status s = planner_->Abandon(); !s.ok() && !absl::IsCancelled(s)) {
    USINE_LOG(WARNING) << "data stream: closing the agreement with the other ranks: " << s;
  }
}

absl::Status DataStream::Impl::CopyToDevice(const Tensor& host, int buffer, const Stream& stream,
                                            Tensor* device) {
  ASSIGN_OR_RETURN(*device,
                   Tensor::Empty(host.shape(), host.dtype(), options_.device, stream.handle()));
  RETURN_IF_ERROR(Copy(host, *device, stream));
  std::optional<Event>& event = buffers_->copied(buffer);
  if (!event.has_value()) {
    ASSIGN_OR_RETURN(Event created, Event::Create(options_.device));
    event.emplace(std::move(created));
  }
  return event->Record(stream);
}

absl::StatusOr<Batch> DataStream::Impl::Next(const Stream& stream) {
  if (options_.device.is_cuda() && stream.device() != options_.device) {
    return absl::InvalidArgumentError(
        absl::StrCat("DataStream::Next: batches go to ", options_.device.ToString(),
                     ", but the copy stream is one of ", stream.device().ToString()));
  }
  ASSIGN_OR_RETURN(data_internal::FilledBuffer filled, buffers_->Take());
  Batch batch;
  batch.index = filled.index;
  batch.incoming_samples = filled.incoming_samples;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Wrap(buffers_->memory(filled.buffer),
                                             {options_.batch_size, options_.seq_len + 1},
                                             token_dtype_, Device::Cpu()));
  if (options_.device.is_cpu()) {
    batch.tokens = std::move(host);
    // The buffer is free again when the last copy of the Batch is gone.
    batch.buffer = std::shared_ptr<void>(
        buffers_->memory(filled.buffer),
        [buffers = buffers_, id = filled.buffer](void*) { buffers->Release(id); });
  } else {
    const absl::Status copied = CopyToDevice(host, filled.buffer, stream, &batch.tokens);
    buffers_->Release(filled.buffer);
    RETURN_IF_ERROR(copied);
  }
  state_ = std::move(filled.state);
  return batch;
}

void DataStream::Impl::Close() {
  closing_ = true;
  // A blocked Next() ends now, not when the other ranks have reached the closing round.
  buffers_->Stop(absl::CancelledError("data stream closed"));
  buffers_->Wake();
  std::lock_guard<std::mutex> lock(close_mu_);
  for (std::thread& filler : fillers_) {
    if (filler.joinable()) filler.join();
  }
}

namespace {

// The planner and the buffers of a stream: everything Open does before the fill threads start.
struct Prepared {
  std::unique_ptr<BatchPlanner> planner;
  std::shared_ptr<BatchBuffers> buffers;
};

absl::StatusOr<Prepared> Prepare(const DataStreamOptions& options, const DataStreamState* resume) {
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
    watch.arrival_grace = options.watch->arrival_grace;
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
  Prepared prepared;
  ASSIGN_OR_RETURN(prepared.planner,
                   BatchPlanner::Create(plan, std::move(base), std::move(incoming), resume));
  // One buffer more than `prefetch`: the one the consumer holds.
  ASSIGN_OR_RETURN(prepared.buffers,
                   BatchBuffers::Create(options.prefetch + 1,
                                        options.batch_size * (options.seq_len + 1) *
                                            DTypeSize(TokenDType(options.vocab_size)),
                                        prepared.planner->state().batches));
  return prepared;
}

// Watch mode: each rank plans every global batch from what it opened itself, so they must all
// have opened the same data. A resumed incoming shard that a lagging shared file system shows
// one host shorter, or another base dataset on one host, would make them plan different
// batches: an error on every rank instead, naming both views.
absl::Status AgreeOnOpenedData(Communicator& comm, const BatchPlanner& planner) {
  ASSIGN_OR_RETURN(const std::vector<std::string> all, AllGatherBytes(comm, planner.OpenedData()));
  for (int r = 1; r < comm.size(); ++r) {
    if (all[r] == all[0]) continue;
    return absl::UnavailableError(absl::StrCat("data stream: rank 0 of ", comm.name(), " opened ",
                                               all[0], ", rank ", r, " ", all[r],
                                               "; their views of the data differ"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataStream>> DataStream::Open(DataStreamOptions options,
                                                             const DataStreamState* resume) {
  absl::StatusOr<Prepared> prepared = Prepare(options, resume);
  if (options.watch.has_value() && options.comm != nullptr) {
    // The fill threads start the agreement rounds on comm at once, and a rank whose open failed
    // would never join them: every rank fails together instead.
    RETURN_IF_ERROR(AgreeOnStatus(*options.comm, prepared.status()));
    RETURN_IF_ERROR(AgreeOnOpenedData(*options.comm, *prepared->planner));
  }
  RETURN_IF_ERROR(prepared.status());
  return std::unique_ptr<DataStream>(new DataStream(std::make_unique<Impl>(
      std::move(options), std::move(prepared->planner), std::move(prepared->buffers))));
}

DataStream::DataStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DataStream::~DataStream() = default;

absl::StatusOr<Batch> DataStream::Next() { return impl_->Next(Stream::Default(impl_->device())); }
absl::StatusOr<Batch> DataStream::Next(const Stream& stream) { return impl_->Next(stream); }
const DataStreamState& DataStream::state() const { return impl_->state(); }
int64_t DataStream::samples_per_epoch() const { return impl_->samples_per_epoch(); }
void DataStream::Close() { impl_->Close(); }

}  // namespace usine
