#include "runtime/nn/splittable_linear.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

absl::StatusOr<std::unique_ptr<LinearSublayer>> CreateSplittableLinear(
    const SplittableLinearOptions& o, ParameterInitializer& init) {
  if (o.split == LinearSplit::kRows &&
      (o.activation != LinearActivation::kNone || o.output_operand)) {
    return absl::InvalidArgumentError(
        "CreateSplittableLinear: a row-parallel layer takes no activation and no operand output "
        "(its outputs are f32 partial sums until all-reduced)");
  }
  if (o.split == LinearSplit::kColumns && o.input_gradient_operand &&
      TensorParallelSize(o.tp) > 1) {
    return absl::InvalidArgumentError(
        "CreateSplittableLinear: a column-parallel layer takes no operand input gradient (its "
        "input gradients are f32 partial sums until all-reduced)");
  }
  if (TensorParallelSize(o.tp) <= 1) {
    ASSIGN_OR_RETURN(std::unique_ptr<Linear> linear,
                     Linear::Create({.in_features = o.in_features,
                                     .out_features = o.out_features,
                                     .init_stddev = o.init_stddev,
                                     .dtype = o.dtype,
                                     .device = o.device,
                                     .activation = o.activation,
                                     .output_operand = o.output_operand,
                                     .input_gradient_operand = o.input_gradient_operand},
                                    init));
    return linear;
  }
  if (o.split == LinearSplit::kColumns) {
    ASSIGN_OR_RETURN(std::unique_ptr<ColumnParallelLinear> linear,
                     ColumnParallelLinear::Create({.in_features = o.in_features,
                                                   .out_features = o.out_features,
                                                   .groups = o.groups,
                                                   .init_stddev = o.init_stddev,
                                                   .dtype = o.dtype,
                                                   .device = o.device,
                                                   .tp = o.tp,
                                                   .activation = o.activation,
                                                   .output_operand = o.output_operand},
                                                  init));
    return linear;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RowParallelLinear> linear,
                   RowParallelLinear::Create({.in_features = o.in_features,
                                              .out_features = o.out_features,
                                              .init_stddev = o.init_stddev,
                                              .dtype = o.dtype,
                                              .device = o.device,
                                              .tp = o.tp,
                                              .input_gradient_operand = o.input_gradient_operand},
                                             init));
  return linear;
}

}  // namespace usine
