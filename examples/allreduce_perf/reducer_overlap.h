// The GradientReducer part of allreduce_perf: how much of the gradient all-reduce a real
// backward pass hides.
#ifndef USINE_EXAMPLES_ALLREDUCE_PERF_REDUCER_OVERLAP_H_
#define USINE_EXAMPLES_ALLREDUCE_PERF_REDUCER_OVERLAP_H_

#include "absl/status/status.h"

#include "runtime/launch/world.h"

namespace usine {

struct OverlapShape {
  int layers = 4;
  int hidden = 768;
  int tokens = 1024;
};

// A transformer-shaped set of weight gradients (per layer: qkv [3h, h], proj [h, h],
// fc [4h, h], fc_proj [h, 4h]) computed by a backward pass of real matrix products
// (grad += dY^T X over `tokens` rows), each marked ready as soon as it is computed, then
// Finish. Prints on rank 0: backward time with the reductions running, the exposed
// communication (from the end of backward to Finish's return) and its share of backward,
// backward alone, and the same reductions run after backward with nothing to hide them.
absl::Status MeasureReducerOverlap(World& world, const OverlapShape& shape);

}  // namespace usine

#endif  // USINE_EXAMPLES_ALLREDUCE_PERF_REDUCER_OVERLAP_H_
