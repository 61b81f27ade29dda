#include "runtime/nn/column_parallel_linear.h"

#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/cpu_elementwise.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<ColumnParallelLinear>> ColumnParallelLinear::Create(
    const ColumnParallelLinearOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "ColumnParallelLinear"));
  RETURN_IF_ERROR(CheckTensorParallelDevice(options.device, "ColumnParallelLinear"));
  if (options.in_features < 1 || options.out_features < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ColumnParallelLinear: features must be positive, got in ",
                     options.in_features, ", out ", options.out_features));
  }
  auto layer = std::unique_ptr<ColumnParallelLinear>(new ColumnParallelLinear(options));
  const Shape full{options.out_features, options.in_features};
  ASSIGN_OR_RETURN(const TensorParallelSplit split,
                   MakeTensorParallelSplit(options.tp, full, /*dim=*/0, options.groups,
                                           "ColumnParallelLinear weight"));
  ASSIGN_OR_RETURN(layer->weight_, layer->AddParameter("weight", ShardShape(full, split),
                                                       options.dtype, options.device,
                                                       /*decay=*/true, init.gradients()));
  layer->weight_->split = split;
  RETURN_IF_ERROR(InitNormalShard(init, layer->weight_->value, full, split, options.init_stddev));
  if (options.bias) {
    ASSIGN_OR_RETURN(
        layer->bias_,
        layer->AddParameter("bias", ShardShape({options.out_features}, split), options.dtype,
                            options.device, /*decay=*/false, init.gradients()));
    layer->bias_->split = split;
    RETURN_IF_ERROR(Fill(layer->bias_->value, 0.0));
  }
  return layer;
}

int64_t ColumnParallelLinear::local_out_features() const {
  return options_.out_features / TensorParallelSize(options_.tp);
}

absl::StatusOr<Tensor> ColumnParallelLinear::Forward(const Tensor& x) {
  RETURN_IF_ERROR(ni::CheckLayerInput(x, options_.dtype, options_.device, options_.in_features,
                                      "ColumnParallelLinear input"));
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = local_out_features();
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(Shape(absl::MakeConstSpan(dims)), x.dtype()));
  RETURN_IF_ERROR(
      Matmul(x, weight_->value, y, {.transpose_b = true, .bias = bias_ ? &bias_->value : nullptr}));
  x_ = x;
  return y;
}

absl::StatusOr<Tensor> ColumnParallelLinear::Backward(const Tensor& dy) {
  if (!x_) return absl::FailedPreconditionError("ColumnParallelLinear::Backward before Forward");
  const int64_t out = local_out_features();
  RETURN_IF_ERROR(
      ni::CheckLayerInput(dy, options_.dtype, options_.device, out, "ColumnParallelLinear dy"));
  const int64_t rows = x_->numel() / options_.in_features;
  if (dy.numel() != rows * out) {
    return absl::InvalidArgumentError(absl::StrCat("ColumnParallelLinear dy: ", dy.DebugString(),
                                                   " does not match the input ",
                                                   x_->DebugString()));
  }
  ASSIGN_OR_RETURN(Tensor dy2, dy.Reshape({rows, out}));
  ASSIGN_OR_RETURN(Tensor x2, x_->Reshape({rows, options_.in_features}));
  RETURN_IF_ERROR(Matmul(dy2, x2, weight_->grad, {.transpose_a = true, .beta = 1.0f}));
  if (bias_ != nullptr) {
    ni::VisitReal(dy.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::AccumulateColumnSums(ni::Elements<T>(dy2), rows, out, ni::Elements<T>(bias_->grad));
    });
  }
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), x_->dtype()));
  RETURN_IF_ERROR(Matmul(dy, weight_->value, dx));
  RETURN_IF_ERROR(AllReduceOverTensorParallel(options_.tp, dx, ReduceOp::kSum));
  return dx;
}

}  // namespace usine
