#include "collectives/gradient_reducer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"

namespace usine {

absl::StatusOr<std::unique_ptr<GradientReducer>> GradientReducer::Create(
    Communicator& dp, std::vector<GradientSpec> specs, GradientReducerOptions options) {
  if (options.bucket_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GradientReducer: bucket_bytes ", options.bucket_bytes, " must be positive"));
  }
  auto reducer = std::unique_ptr<GradientReducer>(new GradientReducer(dp));
  reducer->slots_.resize(specs.size());
  // Reverse registration order: the gradients backward produces first share the first bucket.
  struct Planned {
    DType dtype;
    int64_t elements = 0;
    std::vector<std::pair<int, int64_t>> members;  // (gradient index, element offset)
  };
  std::vector<Planned> plan;
  for (int i = static_cast<int>(specs.size()) - 1; i >= 0; --i) {
    const GradientSpec& spec = specs[i];
    RETURN_IF_ERROR(WithContext(spec.shape.Validate(), absl::StrCat("gradient '", spec.name, "'")));
    if (!IsFloatingPoint(spec.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat("gradient '", spec.name, "' has dtype ",
                                                     DTypeName(spec.dtype), ", not floating"));
    }
    const int64_t bytes = spec.shape.numel() * static_cast<int64_t>(DTypeSize(spec.dtype));
    const bool fits = !plan.empty() && plan.back().dtype == spec.dtype &&
                      (plan.back().elements * static_cast<int64_t>(DTypeSize(spec.dtype)) + bytes <=
                       options.bucket_bytes);
    if (!fits) {
      plan.emplace_back();
      plan.back().dtype = spec.dtype;
    }
    plan.back().members.emplace_back(i, plan.back().elements);
    plan.back().elements += spec.shape.numel();
  }
  for (size_t b = 0; b < plan.size(); ++b) {
    Bucket bucket;
    ASSIGN_OR_RETURN(bucket.buffer, Tensor::Empty({plan[b].elements}, plan[b].dtype, dp.device()));
    RETURN_IF_ERROR(Fill(bucket.buffer, 0.0));
    for (const auto& [index, offset] : plan[b].members) {
      Slot& slot = reducer->slots_[index];
      slot.name = specs[index].name;
      slot.bucket = static_cast<int>(b);
      ASSIGN_OR_RETURN(slot.view, bucket.buffer.View(offset, specs[index].shape));
    }
    reducer->buckets_.push_back(std::move(bucket));
  }
  if (dp.device().is_cuda()) {
    ASSIGN_OR_RETURN(Stream stream, Stream::Create(dp.device()));
    reducer->comm_stream_ = std::make_unique<Stream>(std::move(stream));
    ASSIGN_OR_RETURN(Event ready, Event::Create(dp.device()));
    reducer->ready_event_ = std::make_unique<Event>(std::move(ready));
    ASSIGN_OR_RETURN(Event reduced, Event::Create(dp.device()));
    reducer->reduced_event_ = std::make_unique<Event>(std::move(reduced));
  }
  return reducer;
}

GradientReducer::~GradientReducer() {
  for (Bucket& bucket : buckets_) {
    if (bucket.work != nullptr) bucket.work->Wait().IgnoreError();
  }
}

Stream GradientReducer::DefaultCompute() const { return Stream::Default(dp_.device()); }

absl::Status GradientReducer::BeginStep(bool reduce) { return BeginStep(reduce, DefaultCompute()); }

absl::Status GradientReducer::BeginStep(bool reduce, const Stream& compute) {
  for (const Bucket& bucket : buckets_) {
    if (bucket.work != nullptr) {
      return absl::FailedPreconditionError(
          "GradientReducer: BeginStep before Finish of the previous reducing step");
    }
  }
  reducing_ = reduce;
  compute_ = Stream::Borrow(compute.device(), compute.handle());
  next_launch_ = 0;
  for (Slot& slot : slots_) slot.ready = false;
  for (Bucket& bucket : buckets_) bucket.pending = 0;
  for (const Slot& slot : slots_) ++buckets_[slot.bucket].pending;
  return absl::OkStatus();
}

absl::Status GradientReducer::MarkReady(int index) {
  if (index < 0 || index >= num_gradients()) {
    return absl::InvalidArgumentError(absl::StrCat("GradientReducer: no gradient ", index, " (",
                                                   num_gradients(), " registered)"));
  }
  if (!reducing_) return absl::OkStatus();
  Slot& slot = slots_[index];
  if (slot.ready) {
    return absl::FailedPreconditionError(
        absl::StrCat("GradientReducer: gradient '", slot.name, "' marked ready twice in one step"));
  }
  slot.ready = true;
  --buckets_[slot.bucket].pending;
  return LaunchReadyBuckets();
}

absl::Status GradientReducer::LaunchReadyBuckets() {
  while (next_launch_ < num_buckets() && buckets_[next_launch_].pending == 0) {
    Bucket& bucket = buckets_[next_launch_];
    CollectiveOptions options;
    if (comm_stream_ != nullptr) {
      // The reduction may start only once compute has written the bucket's gradients.
      RETURN_IF_ERROR(ready_event_->Record(compute_));
      RETURN_IF_ERROR(comm_stream_->WaitFor(*ready_event_));
      options.stream = comm_stream_.get();
    }
    ASSIGN_OR_RETURN(bucket.work,
                     dp_.AllReduceAsync(bucket.buffer, bucket.buffer, ReduceOp::kAvg, options));
    ++next_launch_;
  }
  return absl::OkStatus();
}

absl::Status GradientReducer::Finish() {
  if (!reducing_) return absl::OkStatus();
  std::vector<std::string> missing;
  for (const Slot& slot : slots_) {
    if (!slot.ready) missing.push_back(slot.name);
  }
  absl::Status status = absl::OkStatus();
  if (!missing.empty()) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "GradientReducer: gradients never marked ready: ", absl::StrJoin(missing, ", ")));
  }
  // Wait for what was launched even on error, so that no reduction outlives this step.
  for (Bucket& bucket : buckets_) {
    if (bucket.work == nullptr) continue;
    absl::Status reduced = bucket.work->Wait();
    bucket.work.reset();
    if (status.ok()) status = reduced;
  }
  reducing_ = false;
  if (status.ok() && comm_stream_ != nullptr) {
    RETURN_IF_ERROR(reduced_event_->Record(*comm_stream_));
    RETURN_IF_ERROR(compute_.WaitFor(*reduced_event_));
  }
  return status;
}

absl::Status GradientReducer::ZeroGradients() { return ZeroGradients(DefaultCompute()); }

absl::Status GradientReducer::ZeroGradients(const Stream& compute) {
  for (Bucket& bucket : buckets_) RETURN_IF_ERROR(Fill(bucket.buffer, 0.0, compute));
  return absl::OkStatus();
}

}  // namespace usine
