#include "runtime/nn/vocab_parallel_embedding.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/internal/cpu_vocab_parallel.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<VocabParallelEmbedding>> VocabParallelEmbedding::Create(
    const VocabParallelEmbeddingOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "VocabParallelEmbedding"));
  VocabParallelEmbeddingOptions o = options;
  if (o.valid_rows < 0) o.valid_rows = o.rows;
  if (o.rows < 1 || o.dim < 1 || o.valid_rows < 1 || o.valid_rows > o.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("VocabParallelEmbedding: need 0 < valid_rows <= rows and dim > 0, got rows ",
                     o.rows, ", valid_rows ", o.valid_rows, ", dim ", o.dim));
  }
  auto e = std::unique_ptr<VocabParallelEmbedding>(new VocabParallelEmbedding(o));
  const Shape full{o.rows, o.dim};
  ASSIGN_OR_RETURN(const TensorParallelSplit split,
                   MakeTensorParallelSplit(o.tp, full, /*dim=*/0, /*groups=*/1,
                                           "VocabParallelEmbedding weight"));
  ASSIGN_OR_RETURN(e->weight_, e->AddParameter("weight", ShardShape(full, split), o.dtype, o.device,
                                               /*decay=*/true, init.gradients()));
  e->weight_->split = split;
  ASSIGN_OR_RETURN(Tensor whole, Tensor::Empty(full, o.dtype));
  RETURN_IF_ERROR(init.Normal(whole, o.init_stddev));
  ASSIGN_OR_RETURN(Tensor padding, whole.Slice(o.valid_rows, o.rows));
  RETURN_IF_ERROR(Fill(padding, 0.0));
  RETURN_IF_ERROR(CopyShard(whole, e->weight_->value, split));
  return e;
}

int64_t VocabParallelEmbedding::local_rows() const {
  return options_.rows / TensorParallelSize(options_.tp);
}

int64_t VocabParallelEmbedding::row_begin() const {
  return TensorParallelRank(options_.tp) * local_rows();
}

absl::StatusOr<Tensor> VocabParallelEmbedding::Forward(const TokenWindow& ids) {
  ASSIGN_OR_RETURN(std::vector<int32_t> gathered,
                   ReadTokenIds(ids, options_.valid_rows, "VocabParallelEmbedding ids"));
  ASSIGN_OR_RETURN(Tensor x, Tensor::Empty({ids.batch(), ids.length, options_.dim}, options_.dtype,
                                           options_.device));
  const ni::VocabSlice slice{row_begin(), local_rows(), local_rows()};
  if (options_.device.is_cuda()) {
    ASSIGN_OR_RETURN(const Tensor rows,
                     ni::CudaUploadIds(ni::SliceRows(gathered, slice), options_.device));
    RETURN_IF_ERROR(ni::CudaEmbeddingForward(rows, weight_->value, x));
  } else {
    ni::VisitReal(options_.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::SliceEmbeddingForward(gathered.data(), static_cast<int64_t>(gathered.size()),
                                ni::Elements<T>(weight_->value), slice, options_.dim,
                                ni::Elements<T>(x));
    });
  }
  RETURN_IF_ERROR(AllReduceOverTensorParallel(options_.tp, x, ReduceOp::kSum));
  ids_ = std::move(gathered);
  ids_batch_ = ids.batch();
  return x;
}

absl::Status VocabParallelEmbedding::Backward(const Tensor& dx) {
  if (ids_.empty()) {
    return absl::FailedPreconditionError("VocabParallelEmbedding::Backward before Forward");
  }
  RETURN_IF_ERROR(ni::CheckLayerInput(dx, options_.dtype, options_.device, options_.dim,
                                      "VocabParallelEmbedding dx"));
  const int64_t length = static_cast<int64_t>(ids_.size()) / ids_batch_;
  RETURN_IF_ERROR(CheckShape(dx, {ids_batch_, length, options_.dim}, "VocabParallelEmbedding dx"));
  const ni::VocabSlice slice{row_begin(), local_rows(), local_rows()};
  if (options_.device.is_cuda()) {
    return ni::CudaEmbeddingBackward(ni::SliceRows(ids_, slice), dx, weight_->grad);
  }
  ni::VisitReal(options_.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::SliceEmbeddingBackward(ids_.data(), static_cast<int64_t>(ids_.size()), ni::Elements<T>(dx),
                               slice, options_.dim, ni::Elements<T>(weight_->grad));
  });
  return absl::OkStatus();
}

}  // namespace usine
