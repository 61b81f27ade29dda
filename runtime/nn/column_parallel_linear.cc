#include "runtime/nn/column_parallel_linear.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<ColumnParallelLinear>> ColumnParallelLinear::Create(
    const ColumnParallelLinearOptions& options, ParameterInitializer& init) {
  RETURN_IF_ERROR(ni::CheckLayerPlacement(options.dtype, options.device, "ColumnParallelLinear"));
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

ColumnParallelLinear::ColumnParallelLinear(const ColumnParallelLinearOptions& options)
    : options_(options),
      product_("ColumnParallelLinear", options.in_features,
               options.out_features / TensorParallelSize(options.tp), options.dtype, options.device,
               options.activation, options.output_operand) {}

int64_t ColumnParallelLinear::local_out_features() const {
  return options_.out_features / TensorParallelSize(options_.tp);
}

absl::StatusOr<Tensor> ColumnParallelLinear::Forward(const Tensor& x) {
  return product_.Forward(x, weight_->value, bias_ != nullptr ? &bias_->value : nullptr);
}

absl::StatusOr<Tensor> ColumnParallelLinear::Backward(const Tensor& dy) {
  return AllReduced(product_.Backward(dy, weight_->grad, bias_grad()));
}

absl::StatusOr<Tensor> ColumnParallelLinear::Preactivation() const {
  return product_.Preactivation();
}

absl::StatusOr<Tensor> ColumnParallelLinear::BackwardThroughGelu(const Tensor& dy,
                                                                 const Tensor& preactivation) {
  // Each rank's share of dh is its partial dx times gelu'(h), h the same on every rank: the sum
  // of the shares is dh.
  return AllReduced(product_.BackwardThroughGelu(dy, preactivation, weight_->grad, bias_grad()));
}

absl::StatusOr<Tensor> ColumnParallelLinear::BackwardFromPreactivation(const Tensor& dh) {
  return AllReduced(product_.BackwardFromPreactivation(dh, weight_->grad, bias_grad()));
}

absl::StatusOr<Tensor> ColumnParallelLinear::AllReduced(absl::StatusOr<Tensor> partial) const {
  if (!partial.ok()) return partial.status();
  RETURN_IF_ERROR(AllReduceOverTensorParallel(options_.tp, *partial, ReduceOp::kSum));
  return partial;
}

}  // namespace usine
