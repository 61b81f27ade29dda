#include "runtime/nn/row_parallel_linear.h"

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

absl::StatusOr<std::unique_ptr<RowParallelLinear>> RowParallelLinear::Create(
    const RowParallelLinearOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "RowParallelLinear"));
  RETURN_IF_ERROR(CheckTensorParallelDevice(options.device, "RowParallelLinear"));
  if (options.in_features < 1 || options.out_features < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("RowParallelLinear: features must be positive, got in ", options.in_features,
                     ", out ", options.out_features));
  }
  auto layer = std::unique_ptr<RowParallelLinear>(new RowParallelLinear(options));
  const Shape full{options.out_features, options.in_features};
  ASSIGN_OR_RETURN(const TensorParallelSplit split,
                   MakeTensorParallelSplit(options.tp, full, /*dim=*/1, /*groups=*/1,
                                           "RowParallelLinear weight"));
  ASSIGN_OR_RETURN(layer->weight_, layer->AddParameter("weight", ShardShape(full, split),
                                                       options.dtype, options.device,
                                                       /*decay=*/true, init.gradients()));
  layer->weight_->split = split;
  RETURN_IF_ERROR(InitNormalShard(init, layer->weight_->value, full, split, options.init_stddev));
  if (options.bias) {
    ASSIGN_OR_RETURN(layer->bias_, layer->AddParameter("bias", {options.out_features},
                                                       options.dtype, options.device,
                                                       /*decay=*/false, init.gradients()));
    RETURN_IF_ERROR(Fill(layer->bias_->value, 0.0));
  }
  return layer;
}

int64_t RowParallelLinear::local_in_features() const {
  return options_.in_features / TensorParallelSize(options_.tp);
}

absl::StatusOr<Tensor> RowParallelLinear::Forward(const Tensor& x) {
  const int64_t in = local_in_features();
  RETURN_IF_ERROR(
      ni::CheckLayerInput(x, options_.dtype, options_.device, in, "RowParallelLinear input"));
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
  dims.back() = options_.out_features;
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty(Shape(absl::MakeConstSpan(dims)), x.dtype()));
  // The bias joins rank 0's partial product only, so the sum holds it once.
  const bool add_bias = bias_ != nullptr && TensorParallelRank(options_.tp) == 0;
  RETURN_IF_ERROR(Matmul(x, weight_->value, y,
                         {.transpose_b = true, .bias = add_bias ? &bias_->value : nullptr}));
  RETURN_IF_ERROR(AllReduceOverTensorParallel(options_.tp, y, ReduceOp::kSum));
  x_ = x;
  return y;
}

absl::StatusOr<Tensor> RowParallelLinear::Backward(const Tensor& dy) {
  if (!x_) return absl::FailedPreconditionError("RowParallelLinear::Backward before Forward");
  const int64_t in = local_in_features(), out = options_.out_features;
  RETURN_IF_ERROR(
      ni::CheckLayerInput(dy, options_.dtype, options_.device, out, "RowParallelLinear dy"));
  const int64_t rows = x_->numel() / in;
  if (dy.numel() != rows * out) {
    return absl::InvalidArgumentError(absl::StrCat("RowParallelLinear dy: ", dy.DebugString(),
                                                   " does not match the input ",
                                                   x_->DebugString()));
  }
  ASSIGN_OR_RETURN(Tensor dy2, dy.Reshape({rows, out}));
  ASSIGN_OR_RETURN(Tensor x2, x_->Reshape({rows, in}));
  RETURN_IF_ERROR(Matmul(dy2, x2, weight_->grad, {.transpose_a = true, .beta = 1.0f}));
  if (bias_ != nullptr) {
    ni::VisitReal(dy.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::AccumulateColumnSums(ni::Elements<T>(dy2), rows, out, ni::Elements<T>(bias_->grad));
    });
  }
  ASSIGN_OR_RETURN(Tensor dx, Tensor::Empty(x_->shape(), x_->dtype()));
  RETURN_IF_ERROR(Matmul(dy, weight_->value, dx));
  return dx;
}

}  // namespace usine
