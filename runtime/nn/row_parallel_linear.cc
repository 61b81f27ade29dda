#include "runtime/nn/row_parallel_linear.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<RowParallelLinear>> RowParallelLinear::Create(
    const RowParallelLinearOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "RowParallelLinear"));
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

RowParallelLinear::RowParallelLinear(const RowParallelLinearOptions& options)
    : options_(options),
      product_("RowParallelLinear", options.in_features / TensorParallelSize(options.tp),
               options.out_features, options.dtype, options.device, LinearActivation::kNone,
               /*output_operand=*/false, options.input_gradient_operand) {}

int64_t RowParallelLinear::local_in_features() const {
  return options_.in_features / TensorParallelSize(options_.tp);
}

absl::StatusOr<Tensor> RowParallelLinear::Forward(const Tensor& x) {
  return ForwardWith(x, nullptr);
}

absl::StatusOr<Tensor> RowParallelLinear::ForwardAdding(const Tensor& x, const Tensor& residual) {
  return ForwardWith(x, &residual);
}

absl::StatusOr<Tensor> RowParallelLinear::ForwardWith(const Tensor& x, const Tensor* residual) {
  // The bias and the residual join rank 0's partial product only, so the sum holds them once.
  const bool rank0 = TensorParallelRank(options_.tp) == 0;
  const Tensor* bias = bias_ != nullptr && rank0 ? &bias_->value : nullptr;
  if (residual != nullptr && !rank0) {
    // Every rank refuses a wrong residual before the collective, as rank 0's product does.
    std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end());
    if (!dims.empty()) dims.back() = options_.out_features;
    RETURN_IF_ERROR(product_.CheckResidual(*residual, Shape(absl::MakeConstSpan(dims))));
  }
  ASSIGN_OR_RETURN(Tensor y, product_.Forward(x, weight_->value, bias, rank0 ? residual : nullptr));
  RETURN_IF_ERROR(AllReduceOverTensorParallel(options_.tp, y, ReduceOp::kSum));
  return y;
}

absl::StatusOr<Tensor> RowParallelLinear::Backward(const Tensor& dy) {
  return product_.Backward(dy, weight_->grad, bias_grad());
}

absl::StatusOr<Tensor> RowParallelLinear::Preactivation() const { return product_.Preactivation(); }

absl::StatusOr<Tensor> RowParallelLinear::BackwardThroughGelu(const Tensor& dy,
                                                              const Tensor& preactivation) {
  return product_.BackwardThroughGelu(dy, preactivation, weight_->grad, bias_grad());
}

absl::StatusOr<Tensor> RowParallelLinear::BackwardFromPreactivation(const Tensor& dh) {
  return product_.BackwardFromPreactivation(dh, weight_->grad, bias_grad());
}

}  // namespace usine
