// Data parallelism for a Module: its parameters' gradients registered with a GradientReducer
// over the data-parallel group, so that backward accumulates straight into the reducer's
// buckets.
//
// Each Parameter::grad is *replaced by a view into a bucket* (its current values copied in),
// rather than copied into the buckets after backward: no second copy of the gradients in
// memory, no copy per step, and a bucket can start its all-reduce as soon as backward has
// written its gradients (MarkReady). Layers reach their gradients through their Parameter
// (never a Tensor handle cached at creation), and so do the optimizer and ZeroGrad, so they
// all see the views; whoever holds a `grad` handle taken before attaching keeps the old
// tensor.
//
//   ASSIGN_OR_RETURN(auto reducer, AttachGradientReducer(*model, grid->comm(ParallelAxis::kData)));
//   ... reducer->BeginStep(true); backward; MarkGradientsReady(*reducer); reducer->Finish();
//
// Not thread-safe. The model and `dp` must outlive the reducer; the model must not add or
// drop parameters afterwards.
#ifndef USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_
#define USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "collectives/gradient_reducer.h"
#include "runtime/nn/module.h"

namespace usine {

// A reducer whose gradient i is model.Parameters()[i]'s, which it becomes (see above).
// REQUIRES: gradients on dp.device().
[[nodiscard]] absl::StatusOr<std::unique_ptr<GradientReducer>> AttachGradientReducer(
    Module& model, Communicator& dp, const GradientReducerOptions& options = {});

// Marks every gradient ready, last parameter first (the order backward finishes them), so
// the buckets launch in order.
[[nodiscard]] absl::Status MarkGradientsReady(GradientReducer& reducer);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_
