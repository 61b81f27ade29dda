#include "runtime/nn/cross_entropy.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/cpu_cross_entropy.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::vector<int32_t>> SoftmaxCrossEntropy::CheckedTargets(
    const Tensor& logits, const TokenWindow& targets) const {
  RETURN_IF_ERROR(CheckDefined(logits, "SoftmaxCrossEntropy logits"));
  RETURN_IF_ERROR(
      ni::CheckLogitsPlacement(logits.dtype(), logits.device(), "SoftmaxCrossEntropy logits"));
  if (logits.rank() != 2 || logits.dim(1) < vocab_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SoftmaxCrossEntropy logits: expected [N, >= ", vocab_, "], got ", logits.DebugString()));
  }
  ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                   ReadTokenIds(targets, vocab_, "SoftmaxCrossEntropy targets"));
  if (static_cast<int64_t>(ids.size()) != logits.dim(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SoftmaxCrossEntropy: ", ids.size(), " targets for ", logits.DebugString()));
  }
  return ids;
}

absl::StatusOr<double> SoftmaxCrossEntropy::Forward(const Tensor& logits,
                                                    const TokenWindow& targets) {
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, CheckedTargets(logits, targets));
  const ni::CrossEntropyDims dims{logits.dim(0), vocab_, logits.dim(1)};
  ASSIGN_OR_RETURN(Tensor lse,
                   Tensor::Empty({dims.rows}, ni::LossDType(logits.dtype()), logits.device()));
  if (logits.device().is_cuda()) {
    ASSIGN_OR_RETURN(Tensor device_targets, ni::CudaUploadIds(ids, logits.device()));
    ASSIGN_OR_RETURN(const double cuda_total,
                     ni::CudaCrossEntropyForward(logits, device_targets, vocab_, lse));
    saved_ = Saved{logits, lse, std::move(ids), device_targets};
    return cuda_total / static_cast<double>(dims.rows);
  }
  const double total = ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return ni::CrossEntropyForward(ni::Elements<T>(logits), ids.data(), dims, ni::Elements<T>(lse));
  });
  saved_ = Saved{logits, lse, std::move(ids), Tensor()};
  return total / static_cast<double>(dims.rows);
}

absl::Status SoftmaxCrossEntropy::Backward(double dloss) {
  if (!saved_) {
    return absl::FailedPreconditionError("SoftmaxCrossEntropy::Backward before Forward");
  }
  const Tensor& logits = saved_->logits;
  const ni::CrossEntropyDims dims{logits.dim(0), vocab_, logits.dim(1)};
  const double scale = dloss / static_cast<double>(dims.rows);
  if (logits.device().is_cuda()) {
    RETURN_IF_ERROR(
        ni::CudaCrossEntropyBackward(saved_->device_targets, saved_->lse, vocab_, scale, logits));
    saved_.reset();
    return absl::OkStatus();
  }
  ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::CrossEntropyBackward(saved_->targets.data(), ni::Elements<T>(saved_->lse), dims, scale,
                             ni::Elements<T>(logits));
  });
  saved_.reset();
  return absl::OkStatus();
}

absl::StatusOr<double> SoftmaxCrossEntropy::ForwardWithGradient(const Tensor& logits,
                                                                const TokenWindow& targets,
                                                                const Tensor& gradient) {
  ASSIGN_OR_RETURN(const std::vector<int32_t> ids, CheckedTargets(logits, targets));
  RETURN_IF_ERROR(CheckDefined(gradient, "SoftmaxCrossEntropy gradient"));
  // On CUDA a bf16 gradient may stand for f32 logits too (a product's operand).
  const bool cuda_bf16_allowed = logits.device().is_cuda() && logits.dtype() != DType::kBF16;
  const bool cuda_bf16 = cuda_bf16_allowed && gradient.dtype() == DType::kBF16;
  if (gradient.shape() != logits.shape() || gradient.device() != logits.device() ||
      (gradient.dtype() != logits.dtype() && !cuda_bf16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SoftmaxCrossEntropy gradient: expected the logits' shape and device, in ",
                     DTypeName(logits.dtype()), cuda_bf16_allowed ? " or bf16" : "",
                     ", for logits ", logits.DebugString(), ", got ", gradient.DebugString()));
  }
  if (gradient.Overlaps(logits) && gradient.raw_data() != logits.raw_data()) {
    return absl::InvalidArgumentError(
        "SoftmaxCrossEntropy gradient: overlaps the logits without being them");
  }
  saved_.reset();
  const ni::CrossEntropyDims dims{logits.dim(0), vocab_, logits.dim(1)};
  const double scale = 1.0 / static_cast<double>(dims.rows);
  if (logits.device().is_cuda()) {
    ASSIGN_OR_RETURN(Tensor device_targets, ni::CudaUploadIds(ids, logits.device()));
    ASSIGN_OR_RETURN(const double cuda_total, ni::CudaCrossEntropyForwardWithGradient(
                                                  logits, device_targets, vocab_, scale, gradient));
    return cuda_total / static_cast<double>(dims.rows);
  }
  const double total = ni::VisitReal(logits.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return ni::CrossEntropyForwardWithGradient(ni::Elements<T>(logits), ids.data(), dims, scale,
                                               ni::Elements<T>(gradient));
  });
  return total / static_cast<double>(dims.rows);
}

}  // namespace usine
