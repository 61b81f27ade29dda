// Data parallelism for a Module: its parameters' gradients registered with a GradientReducer
// over the data-parallel group, so that backward accumulates straight into the reducer's
// buckets, and each bucket's all-reduce starts as soon as backward has finished its
// gradients.
//
// Each Parameter::grad is *replaced by a view into a bucket* (its current values copied in),
// rather than copied into the buckets after backward: no second copy of the gradients in
// memory, no copy per step, and a bucket can start reducing while backward computes the
// others (MarkReady). Layers reach their gradients through their Parameter (never a Tensor
// handle cached at creation), and so do the optimizer and ZeroGrad, so they all see the
// views; whoever holds a `grad` handle taken before attaching keeps the old tensor.
//
//   ASSIGN_OR_RETURN(auto reducer, AttachGradientReducer(*model, grid->comm(ParallelAxis::kData)));
//   GradientReadyMarker marker(*model, *reducer);
//   RETURN_IF_ERROR(reducer->BeginStep(/*reduce=*/true));
//   ... model->Forward(tokens) ...
//   RETURN_IF_ERROR(model->Backward(1.0, [&](Module& m) { return marker.MarkModule(m); }));
//   RETURN_IF_ERROR(reducer->Finish());   // gradients: the average over the DP ranks
//
// Not thread-safe. The model and `dp` must outlive the reducer; the model must not add or
// drop parameters afterwards.
#ifndef USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_
#define USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
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

// Marks gradients ready module by module, for backward passes that report the modules they
// have finished (TokenModel::GradientsFinal), one marker per step. The model and reducer
// must outlive it.
class GradientReadyMarker {
 public:
  // REQUIRES: `reducer` came from AttachGradientReducer(model, ...).
  GradientReadyMarker(Module& model, GradientReducer& reducer);

  // Marks every parameter of `finished` (a module of the model) ready. An error for a
  // parameter the reducer does not know, or one marked twice in a step.
  [[nodiscard]] absl::Status MarkModule(Module& finished);
  // Marks every parameter not marked yet through this marker (for a backward that reports
  // only some of its children, or none).
  [[nodiscard]] absl::Status MarkRemaining();

 private:
  GradientReducer& reducer_;
  absl::flat_hash_map<const Parameter*, int> index_;  // Parameter -> reducer gradient.
  std::vector<bool> marked_;                          // By reducer gradient.
};

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_DATA_PARALLEL_H_
