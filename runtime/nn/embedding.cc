#include "runtime/nn/embedding.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/cpu_embedding.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

namespace ni = nn_internal;

namespace {

absl::Status CheckTable(const EmbeddingOptions& options, absl::string_view what) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, what));
  if (options.rows < 1 || options.dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": rows and dim must be positive, got ",
                                                   options.rows, ", ", options.dim));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Embedding>> Embedding::Create(const EmbeddingOptions& options,
                                                             ParameterInitializer& init) {
  RETURN_IF_ERROR(CheckTable(options, "Embedding"));
  auto e = std::unique_ptr<Embedding>(new Embedding(options));
  ASSIGN_OR_RETURN(e->weight_, e->AddParameter("weight", {options.rows, options.dim}, options.dtype,
                                               options.device, /*decay=*/true, init.gradients()));
  RETURN_IF_ERROR(init.Normal(e->weight_->value, options.init_stddev));
  return e;
}

absl::StatusOr<Tensor> Embedding::Forward(const TokenWindow& ids, int64_t valid_rows) {
  ASSIGN_OR_RETURN(std::vector<int32_t> gathered,
                   ReadTokenIds(ids, valid_rows < 0 ? options_.rows : valid_rows, "Embedding ids"));
  const Shape shape{ids.batch(), ids.length, options_.dim};
  ASSIGN_OR_RETURN(Tensor x, Tensor::Empty(shape, options_.dtype, options_.device));
  if (options_.device.is_cuda()) {
    ASSIGN_OR_RETURN(Tensor device_ids, ni::CudaUploadIds(gathered, options_.device));
    RETURN_IF_ERROR(ni::CudaEmbeddingForward(device_ids, weight_->value, x));
  } else {
    ni::VisitReal(options_.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::EmbeddingForward(gathered.data(), static_cast<int64_t>(gathered.size()),
                           ni::Elements<T>(weight_->value), options_.dim, ni::Elements<T>(x));
    });
  }
  ids_ = std::move(gathered);
  ids_batch_ = ids.batch();
  return x;
}

absl::Status Embedding::Backward(const Tensor& dx) {
  if (ids_.empty()) return absl::FailedPreconditionError("Embedding::Backward before Forward");
  RETURN_IF_ERROR(
      ni::CheckLayerInput(dx, options_.dtype, options_.device, options_.dim, "Embedding dx"));
  const int64_t length = static_cast<int64_t>(ids_.size()) / ids_batch_;
  RETURN_IF_ERROR(CheckShape(dx, {ids_batch_, length, options_.dim}, "Embedding dx"));
  if (options_.device.is_cuda()) return ni::CudaEmbeddingBackward(ids_, dx, weight_->grad);
  ni::VisitReal(options_.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::EmbeddingBackward(ids_.data(), static_cast<int64_t>(ids_.size()), ni::Elements<T>(dx),
                          options_.dim, ni::Elements<T>(weight_->grad));
  });
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PositionEmbedding>> PositionEmbedding::Create(
    const EmbeddingOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(CheckTable(options, "PositionEmbedding"));
  auto e = std::unique_ptr<PositionEmbedding>(new PositionEmbedding(options));
  ASSIGN_OR_RETURN(e->weight_, e->AddParameter("weight", {options.rows, options.dim}, options.dtype,
                                               options.device, /*decay=*/true, init.gradients()));
  RETURN_IF_ERROR(init.Normal(e->weight_->value, options.init_stddev));
  return e;
}

absl::Status PositionEmbedding::CheckInput(const Tensor& x, absl::string_view what) const {
  RETURN_IF_ERROR(ni::CheckLayerInput(x, options_.dtype, options_.device, options_.dim, what));
  if (x.rank() != 3 || x.dim(1) > options_.rows) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected [B, T <= ", options_.rows,
                                                   ", ", options_.dim, "], got ", x.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status PositionEmbedding::Forward(const Tensor& x, int64_t first) {
  RETURN_IF_ERROR(CheckInput(x, "PositionEmbedding input"));
  if (first < 0 || first + x.dim(1) > options_.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("PositionEmbedding input: positions [", first, ", ", first + x.dim(1),
                     ") are not all among the ", options_.rows, " rows"));
  }
  ASSIGN_OR_RETURN(const Tensor rows, weight_->value.Slice(first, first + x.dim(1)));
  if (options_.device.is_cuda()) return ni::CudaAddPositions(rows, x);
  ni::VisitReal(options_.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::AddPositions(ni::Elements<T>(rows), x.dim(0), x.dim(1), options_.dim, ni::Elements<T>(x));
  });
  return absl::OkStatus();
}

absl::Status PositionEmbedding::Backward(const Tensor& dx) {
  RETURN_IF_ERROR(CheckInput(dx, "PositionEmbedding dx"));
  if (options_.device.is_cuda()) {
    // The sum over the batch is a column sum of dx as [B, T * dim] into rows [0, T).
    ASSIGN_OR_RETURN(Tensor rows, weight_->grad.Slice(0, dx.dim(1)));
    return ni::CudaAccumulateColumnSums(dx, dx.dim(1) * options_.dim, rows);
  }
  ni::VisitReal(options_.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::AddPositionsBackward(ni::Elements<T>(dx), dx.dim(0), dx.dim(1), options_.dim,
                             ni::Elements<T>(weight_->grad));
  });
  return absl::OkStatus();
}

}  // namespace usine
