// The linear layer of a module that may be split over a tensor-parallel group (attention.h,
// mlp.h): a Linear when the group has one rank (or is null), else its column-parallel form
// (output features split, `groups` blocks each split separately) or row-parallel form (input
// features split), as `split` says. The weights are drawn from `init` the same way in every
// case, so a split layer's shards are pieces of the unsplit layer's weights.
//
//   ASSIGN_OR_RETURN(c_fc_, CreateSplittableLinear({.in_features = c, .out_features = 4 * c,
//                                                   .split = LinearSplit::kColumns, .tp = tp},
//                                                  init));
#ifndef USINE_RUNTIME_NN_SPLITTABLE_LINEAR_H_
#define USINE_RUNTIME_NN_SPLITTABLE_LINEAR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/nn/init.h"
#include "runtime/nn/linear_activation.h"
#include "runtime/nn/linear_sublayer.h"

namespace usine {

enum class LinearSplit {
  kColumns,  // ColumnParallelLinear: input whole, this rank's outputs.
  kRows,     // RowParallelLinear: this rank's inputs, output whole (all-reduced).
};

struct SplittableLinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int groups = 1;             // kColumns: output blocks split separately (3 for q|k|v). Default: 1.
  double init_stddev = 0.02;  // Default: W ~ normal(0, 0.02).
  DType dtype = DType::kF32;  // f32 or f64. Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
  LinearSplit split = LinearSplit::kColumns;
  Communicator* tp = nullptr;  // Outlives the layer. Default: null, no split.
  // Applied to the output. REQUIRES: kNone under a kRows split, whose outputs are partial sums
  // until all-reduced. Default: none.
  LinearActivation activation = LinearActivation::kNone;
  // As Linear's (linear.h). REQUIRES: false under a kRows split. Default: false.
  bool output_operand = false;
  // As Linear's (linear.h). REQUIRES: false under a kColumns split, whose input gradients are
  // partial sums until all-reduced in f32. Default: false.
  bool input_gradient_operand = false;
};

[[nodiscard]] absl::StatusOr<std::unique_ptr<LinearSublayer>> CreateSplittableLinear(
    const SplittableLinearOptions& options, ParameterInitializer& init);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_SPLITTABLE_LINEAR_H_
