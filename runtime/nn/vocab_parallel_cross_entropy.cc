#include "runtime/nn/vocab_parallel_cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/upload.h"
#include "runtime/nn/internal/cpu_vocab_parallel.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

namespace {

ni::VocabSlice SliceOf(const Tensor& logits, int64_t vocab, int64_t begin) {
  const int64_t count = logits.dim(1);
  return {begin, count, std::clamp<int64_t>(vocab - begin, 0, count)};
}

// `t` itself on the cpu, else a host copy of it (synchronous).
absl::StatusOr<Tensor> OnHost(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(t.shape(), t.dtype()));
  RETURN_IF_ERROR(Copy(t, host));
  return host;
}

}  // namespace

absl::StatusOr<double> VocabParallelCrossEntropy::Forward(const Tensor& logits,
                                                          const TokenWindow& targets) {
  RETURN_IF_ERROR(CheckDefined(logits, "VocabParallelCrossEntropy logits"));
  RETURN_IF_ERROR(ni::CheckLogitsPlacement(logits.dtype(), logits.device(),
                                           "VocabParallelCrossEntropy logits"));
  if (logits.rank() != 2 || vocab_begin_ < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("VocabParallelCrossEntropy logits: expected [N, columns] from column ",
                     vocab_begin_, ", got ", logits.DebugString()));
  }
  ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                   ReadTokenIds(targets, vocab_, "VocabParallelCrossEntropy targets"));
  const int64_t rows = logits.dim(0);
  if (static_cast<int64_t>(ids.size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat("VocabParallelCrossEntropy: ", ids.size(),
                                                   " targets for ", logits.DebugString()));
  }
  const Device device = logits.device();
  const ni::VocabSlice slice = SliceOf(logits, vocab_, vocab_begin_);
  // Each row's max, then its sum of exponentials and its target's logit: one buffer, so that
  // on CUDA one copy brings all of them to the host.
  const DType dtype = ni::LossDType(logits.dtype());
  ASSIGN_OR_RETURN(const Tensor stats, Tensor::Empty({3 * rows}, dtype, device));
  ASSIGN_OR_RETURN(const Tensor max, stats.View(0, {rows}));
  ASSIGN_OR_RETURN(const Tensor sums, stats.View(rows, {2 * rows}));
  Tensor device_targets;  // On CUDA: the ids, on the device.
  if (device.is_cuda()) {
    ASSIGN_OR_RETURN(device_targets, ni::CudaUploadIds(ids, device));
    RETURN_IF_ERROR(ni::CudaSliceRowMax(logits, slice, max));
  } else {
    ni::VisitReal(logits.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::SliceRowMax(ni::Elements<T>(logits), rows, slice, ni::Elements<T>(max));
    });
  }
  RETURN_IF_ERROR(AllReduceOverTensorParallel(tp_, max, ReduceOp::kMax));
  if (device.is_cuda()) {
    RETURN_IF_ERROR(ni::CudaSliceSumExpAndTarget(logits, device_targets, slice, max, sums));
  } else {
    ni::VisitReal(logits.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::SliceSumExpAndTarget(ni::Elements<T>(logits), ids.data(), rows, slice,
                               ni::Elements<T>(max), ni::Elements<T>(sums));
    });
  }
  RETURN_IF_ERROR(AllReduceOverTensorParallel(tp_, sums, ReduceOp::kSum));
  // The log-sum-exps and the loss on the host, in double (a few numbers a row).
  ASSIGN_OR_RETURN(const Tensor host_stats, OnHost(stats));
  ASSIGN_OR_RETURN(Tensor lse, Tensor::Empty({rows}, dtype));
  const double total = ni::VisitReal(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* m = ni::Elements<T>(host_stats);
    const T* s = m + rows;
    T* l = ni::Elements<T>(lse);
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double log_sum_exp = m[r] + std::log(static_cast<double>(s[r]));
      l[r] = static_cast<T>(log_sum_exp);
      sum += log_sum_exp - s[rows + r];
    }
    return sum;
  });
  if (device.is_cuda()) {
    // Ordered before the gradient's kernel on the same stream.
    ASSIGN_OR_RETURN(const Tensor on_device, Tensor::Empty(lse.shape(), lse.dtype(), device));
    RETURN_IF_ERROR(Upload(lse, on_device, Stream::Default(device)));
    lse = on_device;
  }
  saved_ = Saved{logits, lse, std::move(ids), device_targets};
  return total / static_cast<double>(rows);
}

absl::Status VocabParallelCrossEntropy::WriteGradient(double dloss, const Tensor& gradient) {
  const Tensor& logits = saved_->logits;
  const int64_t rows = logits.dim(0);
  const ni::VocabSlice slice = SliceOf(logits, vocab_, vocab_begin_);
  const double scale = dloss / static_cast<double>(rows);
  if (logits.device().is_cuda()) {
    RETURN_IF_ERROR(ni::CudaSliceCrossEntropyGradient(logits, saved_->device_targets, saved_->lse,
                                                      slice, scale, gradient));
  } else {  // In place (checked by the callers).
    ni::VisitReal(logits.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::SliceCrossEntropyBackward(saved_->targets.data(), ni::Elements<T>(saved_->lse), rows,
                                    slice, scale, ni::Elements<T>(logits));
    });
  }
  saved_.reset();
  return absl::OkStatus();
}

absl::Status VocabParallelCrossEntropy::Backward(double dloss) {
  if (!saved_) {
    return absl::FailedPreconditionError("VocabParallelCrossEntropy::Backward before Forward");
  }
  return WriteGradient(dloss, saved_->logits);
}

absl::StatusOr<double> VocabParallelCrossEntropy::ForwardWithGradient(const Tensor& logits,
                                                                      const TokenWindow& targets,
                                                                      const Tensor& gradient) {
  const bool in_place = gradient.defined() && gradient.raw_data() == logits.raw_data() &&
                        gradient.dtype() == logits.dtype();
  const bool cuda_buffer = gradient.defined() && logits.device().is_cuda() &&
                           gradient.device() == logits.device() &&
                           (gradient.dtype() == DType::kBF16 ||
                            (gradient.dtype() == DType::kF32 && logits.dtype() == DType::kF32));
  if (!gradient.defined() || gradient.shape() != logits.shape() || !(in_place || cuda_buffer)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VocabParallelCrossEntropy gradient: expected the logits themselves (in place) or, on "
        "CUDA, a bf16 (or, for f32 logits, f32) tensor of their shape on their device; got ",
        gradient.DebugString(), " for ", logits.DebugString()));
  }
  if (!in_place && gradient.Overlaps(logits)) {
    return absl::InvalidArgumentError(
        "VocabParallelCrossEntropy gradient: overlaps the logits without being them");
  }
  ASSIGN_OR_RETURN(const double loss, Forward(logits, targets));
  RETURN_IF_ERROR(WriteGradient(1.0, gradient));
  return loss;
}

}  // namespace usine
