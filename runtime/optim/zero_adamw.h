// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020): AdamW (adamw.h) with its moments sharded over the data-parallel
// group. The parameters are viewed as one flat vector (in the order given, padded with zeros
// to a multiple of the group's size), and rank r owns the r-th of size() equal, contiguous
// shards. Each Step:
//
//   1. copies the local gradients into a flat buffer and reduce-scatters it (average): rank r
//      receives the averaged gradients of its shard only;
//   2. computes the global gradient norm from the shards (each rank's sum of squares in
//      double, all-gathered and summed in rank order, so every rank gets the same value) and,
//      when it exceeds max_norm, scales the shard by max_norm / norm, as ClipGradientNorm
//      (grad_clip.h) does with whole gradients;
//   3. applies AdamW to its shard (the same element-wise update as AdamW, weight decay only
//      on parameters with `decay`), holding m and v for the shard alone (1/size() of AdamW's
//      memory);
//   4. all-gathers the updated shards, so that every rank's parameters are equal again.
//
// A replacement for "all-reduce the gradients, ClipGradientNorm, AdamW::Step" on every rank:
//
//   ASSIGN_OR_RETURN(auto optimizer, ZeroAdamW::Create(grid.comm(ParallelAxis::kData),
//                                                      model->Parameters(), {.weight_decay =
//                                                      0.1}));
//   ... forward, backward (local gradients, not reduced) ...
//   ASSIGN_OR_RETURN(double norm, optimizer->Step(schedule.At(step), /*max_norm=*/1.0));
//
// Checkpoints: AddToStateDict adds AdamW's entries ("optim/exp_avg/<name>", flattened to
// [numel]), each rank adding the piece of each moment that its shard holds, so the pieces of
// all ranks tile the logical tensors: a checkpoint holds the whole state, and loads into
// ZeroAdamW at another data-parallel size or into AdamW.
//
// REQUIRES: f32 parameters on the cpu (MPI backend; the update has no CUDA kernel yet), equal
// on every rank before the first Step (same seed, or broadcast), listed in the same order on
// every rank. Every call but the accessors is a collective over `dp`.
// Thread-compatible. `dp` and the parameters must outlive the optimizer.
#ifndef USINE_RUNTIME_OPTIM_ZERO_ADAMW_H_
#define USINE_RUNTIME_OPTIM_ZERO_ADAMW_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "checkpoint/state_dict.h"
#include "collectives/communicator.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"
#include "runtime/optim/adamw.h"

namespace usine {

class ZeroAdamW {
 public:
  // Zero moments for this rank's shard. Not a collective (no communication).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ZeroAdamW>> Create(
      Communicator& dp, std::vector<NamedParameter> parameters, const AdamWOptions& options = {});

  // One update from the local gradients (steps 1-4 above) with learning rate `lr`, clipping
  // the averaged gradients to global norm `max_norm` (<= 0 or infinite: no clipping). Returns
  // the global norm of the averaged gradients before clipping. The parameters' `grad`
  // tensors are left as they were (this rank's local gradients). A collective over `dp`.
  [[nodiscard]] absl::StatusOr<double> Step(double lr, double max_norm = 0.0);

  // Updates made so far.
  int64_t step() const { return step_; }
  // Elements of all parameters together, and with the padding (a multiple of dp.size()).
  int64_t numel() const { return numel_; }
  int64_t padded_numel() const { return shard_numel_ * dp_.size(); }
  // This rank's shard: flat elements [shard_begin(), shard_begin() + shard_numel()).
  int64_t shard_begin() const { return shard_numel_ * dp_.rank(); }
  int64_t shard_numel() const { return shard_numel_; }

  // Adds this rank's pieces of "<prefix>exp_avg/<name>" and "<prefix>exp_avg_sq/<name>" (1-D
  // boxes of [numel] tensors, as handles: a checkpoint load fills them in place; a parameter
  // outside the shard adds nothing) and the int "<prefix>step".
  [[nodiscard]] absl::Status AddToStateDict(StateDict& state,
                                            absl::string_view prefix = "optim/") const;
  // Reads "<prefix>step" back after a checkpoint load filled the moments.
  [[nodiscard]] absl::Status RestoreStep(const StateDict& state,
                                         absl::string_view prefix = "optim/");

 private:
  // The part of one parameter inside this rank's shard.
  struct Segment {
    int parameter = 0;         // Index into parameters_.
    int64_t begin = 0;         // First element, in the flattened parameter.
    int64_t length = 0;        // Elements.
    int64_t shard_offset = 0;  // Where it starts in the shard.
  };
  ZeroAdamW(Communicator& dp, const AdamWOptions& options) : dp_(dp), options_(options) {}
  // Steps 2: the norm of the averaged gradients, and clipping.
  absl::StatusOr<double> ClipShard(double max_norm);

  Communicator& dp_;
  AdamWOptions options_;
  std::vector<NamedParameter> parameters_;
  std::vector<int64_t> offsets_;  // Of each parameter in the flat vector.
  std::vector<Segment> segments_;
  int64_t numel_ = 0;
  int64_t shard_numel_ = 0;
  Tensor flat_grad_;   // [padded_numel], the padding stays zero.
  Tensor flat_value_;  // [padded_numel], for the all-gather.
  Tensor exp_avg_;     // [shard_numel]
  Tensor exp_avg_sq_;  // [shard_numel]
  int64_t step_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_ZERO_ADAMW_H_
