#include "runtime/optim/zero_adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/allocator.h"
#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/reduce.h"
#include "runtime/nn/shard_boxes.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/internal/adamw_update.h"
#include "runtime/optim/internal/cuda_adamw_update.h"

namespace usine {
namespace {

float* Floats(const Tensor& t, int64_t offset = 0) {
  return static_cast<float*>(t.raw_data()) + offset;
}

// Each parameter, and each rank's shard, starts this many elements into the flat vector: at
// the alignment of an allocation of its own (allocator.h), which cuBLASLt's bias epilogue, the
// vectorised kernels and the collectives then get from a view as from a tensor.
constexpr int64_t kFlatAlignment = kAllocationAlignment / sizeof(float);

int64_t AlignUp(int64_t n) { return (n + kFlatAlignment - 1) / kFlatAlignment * kFlatAlignment; }

}  // namespace

absl::StatusOr<std::unique_ptr<ZeroAdamW>> ZeroAdamW::Create(Communicator& dp,
                                                             std::vector<NamedParameter> parameters,
                                                             const AdamWOptions& options,
                                                             Communicator* tp) {
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(RequireGradients(parameters, "ZeroAdamW"));
  const Device device = dp.device();
  if (tp != nullptr && tp->device() != device) {
    return absl::InvalidArgumentError(absl::StrCat("ZeroAdamW: the tensor-parallel communicator '",
                                                   tp->name(), "' is on ", tp->device().ToString(),
                                                   ", the data-parallel one '", dp.name(), "' on ",
                                                   device.ToString()));
  }
  auto zero = std::unique_ptr<ZeroAdamW>(new ZeroAdamW(dp, tp, options));
  int64_t flat_end = 0;  // Of the parameters placed so far.
  for (const NamedParameter& p : parameters) {
    const std::string what = absl::StrCat("ZeroAdamW parameter ", p.name);
    const TensorParallelSplit& split = p.parameter->split;
    if (split.sharded() && (tp == nullptr || tp->size() != split.size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " is a shard of a split over ", split.size,
          " tensor-parallel ranks, but the tensor-parallel group given to Create ",
          tp == nullptr ? std::string("is null")
                        : absl::StrCat("'", tp->name(), "' has ", tp->size(), " ranks"),
          ": the gradient norm must add the shards over that group"));
    }
    // The parameters live where the data-parallel communicator reduces.
    const std::string where =
        absl::StrCat(" (communicator '", dp.name(), "' is on ", device.ToString(), ")");
    RETURN_IF_ERROR(CheckDType(p.parameter->value, DType::kF32, what));
    RETURN_IF_ERROR(CheckDevice(p.parameter->value, device, what + where));
    RETURN_IF_ERROR(CheckSameShape(p.parameter->grad, p.parameter->value, what + " grad", "value"));
    RETURN_IF_ERROR(CheckDType(p.parameter->grad, DType::kF32, what + " grad"));
    RETURN_IF_ERROR(CheckDevice(p.parameter->grad, device, what + " grad" + where));
    const int64_t offset = zero->offsets_.empty() ? 0 : AlignUp(flat_end);
    zero->offsets_.push_back(offset);
    flat_end = offset + p.parameter->value.numel();
    zero->numel_ += p.parameter->value.numel();
  }
  zero->parameters_ = std::move(parameters);
  const int64_t ranks = dp.size();
  zero->shard_numel_ = AlignUp((flat_end + ranks - 1) / ranks);
  const int64_t padded = zero->shard_numel_ * ranks;
  ASSIGN_OR_RETURN(zero->flat_grad_, Tensor::Empty({padded}, DType::kF32, device));
  ASSIGN_OR_RETURN(zero->flat_value_, Tensor::Empty({padded}, DType::kF32, device));
  ASSIGN_OR_RETURN(zero->exp_avg_, Tensor::Empty({zero->shard_numel_}, DType::kF32, device));
  ASSIGN_OR_RETURN(zero->exp_avg_sq_, Tensor::Empty({zero->shard_numel_}, DType::kF32, device));
  for (const Tensor* t :
       {&zero->flat_grad_, &zero->flat_value_, &zero->exp_avg_, &zero->exp_avg_sq_}) {
    RETURN_IF_ERROR(Fill(*t, 0.0));
  }
  const int64_t shard_begin = zero->shard_begin(), shard_end = shard_begin + zero->shard_numel_;
  for (size_t i = 0; i < zero->parameters_.size(); ++i) {
    const int64_t begin = zero->offsets_[i];
    const int64_t end = begin + zero->parameters_[i].parameter->value.numel();
    const int64_t lo = std::max(begin, shard_begin), hi = std::min(end, shard_end);
    if (lo >= hi) continue;
    zero->segments_.push_back(Segment{.parameter = static_cast<int>(i),
                                      .begin = lo - begin,
                                      .length = hi - lo,
                                      .shard_offset = lo - shard_begin});
  }
  // The parameters move into the flat buffers, where the collectives run in place.
  for (size_t i = 0; i < zero->parameters_.size(); ++i) {
    Parameter& p = *zero->parameters_[i].parameter;
    ASSIGN_OR_RETURN(Tensor value, zero->flat_value_.View(zero->offsets_[i], p.value.shape()));
    ASSIGN_OR_RETURN(Tensor grad, zero->flat_grad_.View(zero->offsets_[i], p.grad.shape()));
    RETURN_IF_ERROR(WithContext(Copy(p.value, value), zero->parameters_[i].name));
    RETURN_IF_ERROR(WithContext(Copy(p.grad, grad), zero->parameters_[i].name));
    p.value = std::move(value);
    p.grad = std::move(grad);
  }
  return zero;
}

absl::Status ZeroAdamW::AddSquares(const Tensor& grad_shard, double sums[2]) const {
  if (grad_shard.device().is_cpu()) {
    for (const Segment& s : segments_) {
      double& sum = sums[parameters_[s.parameter].parameter->split.sharded() ? 0 : 1];
      const float* x = Floats(grad_shard, s.shard_offset);
      for (int64_t i = 0; i < s.length; ++i) sum += static_cast<double>(x[i]) * x[i];
    }
    return absl::OkStatus();
  }
  // On a device: each segment's norm (one launch pair per 48), to the host at once.
  if (segments_.empty()) return absl::OkStatus();
  std::vector<Tensor> pieces;
  for (const Segment& s : segments_) {
    ASSIGN_OR_RETURN(Tensor piece, grad_shard.View(s.shard_offset, {s.length}));
    pieces.push_back(std::move(piece));
  }
  const auto n = static_cast<int64_t>(pieces.size());
  ASSIGN_OR_RETURN(const Tensor norms, Tensor::Empty({n}, DType::kF32, grad_shard.device()));
  RETURN_IF_ERROR(L2Norms(pieces, norms, Stream::Default(grad_shard.device())));
  ASSIGN_OR_RETURN(const Tensor host, Tensor::Empty({n}, DType::kF32));
  RETURN_IF_ERROR(Copy(norms, host));  // Synchronous: after the norms above.
  for (size_t k = 0; k < segments_.size(); ++k) {
    const double norm = Floats(host)[k];
    sums[parameters_[segments_[k].parameter].parameter->split.sharded() ? 0 : 1] += norm * norm;
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ZeroAdamW::GlobalNorm(const Tensor& grad_shard) {
  // Squares of tensor-parallel shards, then of parameters every TP rank holds whole; the
  // padding (zeros) adds nothing.
  double sums[2] = {0, 0};
  RETURN_IF_ERROR(AddSquares(grad_shard, sums));
  // Reductions take no f64 (communicator.h), so the partial sums are gathered and added in
  // rank order: every rank gets the same norm, in double. The shards' sum is then added over
  // the TP group; the whole parameters' sum is the same on every TP rank and counts once.
  ASSIGN_OR_RETURN(Tensor mine, Tensor::Empty({2}, DType::kF64));
  ASSIGN_OR_RETURN(Tensor all, Tensor::Empty({int64_t{2} * dp_.size()}, DType::kF64));
  std::memcpy(mine.raw_data(), sums, sizeof(sums));
  RETURN_IF_ERROR(dp_.AllGather(mine, all));
  double sharded = 0, whole = 0;
  const double* partial = static_cast<const double*>(all.raw_data());
  for (int64_t r = 0; r < dp_.size(); ++r) {
    sharded += partial[2 * r];
    whole += partial[2 * r + 1];
  }
  if (tp_ != nullptr && tp_->size() > 1) {
    ASSIGN_OR_RETURN(Tensor tp_mine, Tensor::Empty({1}, DType::kF64));
    ASSIGN_OR_RETURN(Tensor tp_all, Tensor::Empty({tp_->size()}, DType::kF64));
    *static_cast<double*>(tp_mine.raw_data()) = sharded;
    RETURN_IF_ERROR(tp_->AllGather(tp_mine, tp_all));
    const double* shards = static_cast<const double*>(tp_all.raw_data());
    sharded = 0;
    for (int r = 0; r < tp_->size(); ++r) sharded += shards[r];
  }
  return std::sqrt(sharded + whole);
}

absl::StatusOr<double> ZeroAdamW::Step(double lr, double max_norm) {
  if (!(lr >= 0)) return absl::InvalidArgumentError(absl::StrCat("ZeroAdamW: learning rate ", lr));
  MarkOp("zero_adamw (reduce-scatter, clip, update, all-gather)", flat_grad_.device());
  const Stream stream = Stream::Default(flat_grad_.device());
  ASSIGN_OR_RETURN(Tensor grad_shard, flat_grad_.View(shard_begin(), {shard_numel_}));
  RETURN_IF_ERROR(dp_.ReduceScatter(flat_grad_, grad_shard, ReduceOp::kAvg, {.stream = &stream}));
  ASSIGN_OR_RETURN(const double norm, GlobalNorm(grad_shard));
  if (!std::isfinite(norm)) return norm;  // The same on every rank: nothing is updated.

  // The clipping factor is applied as the update reads the gradients (adamw_update.h).
  const int64_t t = step_ + 1;
  const optim_internal::AdamWCoefficients c =
      optim_internal::AdamWCoefficientsAt(options_, lr, t, ClipFactor(norm, max_norm));
  RETURN_IF_ERROR(Update(c, grad_shard));
  ASSIGN_OR_RETURN(Tensor value_shard, flat_value_.View(shard_begin(), {shard_numel_}));
  // The next forward pass reads the parameters on the same stream: the host need not wait.
  RETURN_IF_ERROR(
      dp_.AllGather(value_shard, flat_value_, {.stream = &stream, .stream_ordered = true}));
  step_ = t;
  return norm;
}

absl::Status ZeroAdamW::Update(const optim_internal::AdamWCoefficients& c,
                               const Tensor& grad_shard) {
  if (grad_shard.device().is_cpu()) {
    for (const Segment& s : segments_) {
      const Parameter& p = *parameters_[s.parameter].parameter;
      float* value = Floats(p.value, s.begin);  // In flat_value_'s shard.
      optim_internal::AdamWUpdate(c, p.decay, s.length, value, Floats(grad_shard, s.shard_offset),
                                  Floats(exp_avg_, s.shard_offset),
                                  Floats(exp_avg_sq_, s.shard_offset));
    }
    return absl::OkStatus();
  }
  std::vector<optim_internal::AdamWArrays> arrays;
  for (const Segment& s : segments_) {
    const Parameter& p = *parameters_[s.parameter].parameter;
    ASSIGN_OR_RETURN(Tensor value, flat_value_.View(offsets_[s.parameter] + s.begin, {s.length}));
    ASSIGN_OR_RETURN(Tensor grad, grad_shard.View(s.shard_offset, {s.length}));
    ASSIGN_OR_RETURN(Tensor exp_avg, exp_avg_.View(s.shard_offset, {s.length}));
    ASSIGN_OR_RETURN(Tensor exp_avg_sq, exp_avg_sq_.View(s.shard_offset, {s.length}));
    arrays.push_back({.value = std::move(value),
                      .grad = std::move(grad),
                      .exp_avg = std::move(exp_avg),
                      .exp_avg_sq = std::move(exp_avg_sq),
                      .decay = p.decay});
  }
  return optim_internal::CudaAdamWUpdate(c, arrays, grad_shard.device());
}

absl::Status ZeroAdamW::AddToStateDict(StateDict& state, absl::string_view prefix) const {
  for (const Segment& s : segments_) {
    const NamedParameter& p = parameters_[s.parameter];
    const Shape& shape = p.parameter->value.shape();
    const TensorParallelSplit& split = p.parameter->split;
    const Shape logical = LogicalShape(shape, split);
    // The segment is elements [begin, begin + length) of the parameter's (shard's) flat
    // vector: a few boxes of the logical tensor, each contiguous in the moments' shard.
    ASSIGN_OR_RETURN(std::vector<ShardBox> boxes,
                     ShardRangeBoxes(shape, split, s.begin, s.begin + s.length));
    for (const ShardBox& box : boxes) {
      const int64_t at = s.shard_offset + (box.shard_begin - s.begin);
      ASSIGN_OR_RETURN(Tensor exp_avg, exp_avg_.View(at, box.extent));
      ASSIGN_OR_RETURN(Tensor exp_avg_sq, exp_avg_sq_.View(at, box.extent));
      RETURN_IF_ERROR(
          state.AddShard(absl::StrCat(prefix, "exp_avg/", p.name), exp_avg, logical, box.offset));
      RETURN_IF_ERROR(state.AddShard(absl::StrCat(prefix, "exp_avg_sq/", p.name), exp_avg_sq,
                                     logical, box.offset));
    }
  }
  state.SetInt(absl::StrCat(prefix, "step"), step_);
  return absl::OkStatus();
}

absl::Status ZeroAdamW::RestoreStep(const StateDict& state, absl::string_view prefix) {
  ASSIGN_OR_RETURN(const int64_t step, state.GetInt(absl::StrCat(prefix, "step")));
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("ZeroAdamW: saved step ", step));
  step_ = step;
  return absl::OkStatus();
}

}  // namespace usine
