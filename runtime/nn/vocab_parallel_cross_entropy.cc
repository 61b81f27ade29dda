#include "runtime/nn/vocab_parallel_cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/cpu_vocab_parallel.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

namespace {

ni::VocabSlice SliceOf(const Tensor& logits, int64_t vocab, int64_t begin) {
  const int64_t count = logits.dim(1);
  return {begin, count, std::clamp<int64_t>(vocab - begin, 0, count)};
}

}  // namespace

absl::StatusOr<double> VocabParallelCrossEntropy::Forward(const Tensor& logits,
                                                          const TokenWindow& targets) {
  RETURN_IF_ERROR(CheckDefined(logits, "VocabParallelCrossEntropy logits"));
  RETURN_IF_ERROR(
      ni::CheckLayerPlacement(logits.dtype(), logits.device(), "VocabParallelCrossEntropy logits"));
  RETURN_IF_ERROR(CheckTensorParallelDevice(logits.device(), "VocabParallelCrossEntropy logits"));
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
  const ni::VocabSlice slice = SliceOf(logits, vocab_, vocab_begin_);
  ASSIGN_OR_RETURN(Tensor max, Tensor::Empty({rows}, logits.dtype()));
  ASSIGN_OR_RETURN(Tensor sums, Tensor::Empty({2 * rows}, logits.dtype()));
  ASSIGN_OR_RETURN(Tensor lse, Tensor::Empty({rows}, logits.dtype()));
  ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::SliceRowMax(ni::Elements<T>(logits), rows, slice, ni::Elements<T>(max));
  });
  RETURN_IF_ERROR(AllReduceOverTensorParallel(tp_, max, ReduceOp::kMax));
  ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::SliceSumExpAndTarget(ni::Elements<T>(logits), ids.data(), rows, slice, ni::Elements<T>(max),
                             ni::Elements<T>(sums));
  });
  RETURN_IF_ERROR(AllReduceOverTensorParallel(tp_, sums, ReduceOp::kSum));
  const double total = ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* m = ni::Elements<T>(max);
    const T* s = ni::Elements<T>(sums);
    T* l = ni::Elements<T>(lse);
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double log_sum_exp = m[r] + std::log(static_cast<double>(s[r]));
      l[r] = static_cast<T>(log_sum_exp);
      sum += log_sum_exp - s[rows + r];
    }
    return sum;
  });
  saved_ = Saved{logits, lse, std::move(ids)};
  return total / static_cast<double>(rows);
}

absl::Status VocabParallelCrossEntropy::Backward(double dloss) {
  if (!saved_) {
    return absl::FailedPreconditionError("VocabParallelCrossEntropy::Backward before Forward");
  }
  const Tensor& logits = saved_->logits;
  const int64_t rows = logits.dim(0);
  const ni::VocabSlice slice = SliceOf(logits, vocab_, vocab_begin_);
  ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::SliceCrossEntropyBackward(saved_->targets.data(), ni::Elements<T>(saved_->lse), rows, slice,
                                  dloss / static_cast<double>(rows), ni::Elements<T>(logits));
  });
  saved_.reset();
  return absl::OkStatus();
}

absl::StatusOr<double> VocabParallelCrossEntropy::ForwardWithGradient(const Tensor& logits,
                                                                      const TokenWindow& targets,
                                                                      const Tensor& gradient) {
  if (!gradient.defined() || gradient.raw_data() != logits.raw_data() ||
      gradient.shape() != logits.shape() || gradient.dtype() != logits.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VocabParallelCrossEntropy gradient: expected the logits themselves (in place), got ",
        gradient.DebugString(), " for ", logits.DebugString()));
  }
  ASSIGN_OR_RETURN(const double loss, Forward(logits, targets));
  RETURN_IF_ERROR(Backward(1.0));
  return loss;
}

}  // namespace usine
