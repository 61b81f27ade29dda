// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020): AdamW (adamw.h) with its moments sharded over the data-parallel
// group. The parameters are viewed as one flat vector (in the order given, each starting at a
// multiple of 256 bytes, as an allocation does; zeros in the gaps and at the end, up to size()
// equal shards of a multiple of 256 bytes), and rank r owns the r-th of those contiguous
// shards. Create moves the parameters' values and gradients into two flat buffers (each
// Parameter's `value` and `grad` become views of them, with the same contents), so that the
// collectives run in place and nothing is copied; the moments are held for the shard alone
// (2/size() of the parameters, where AdamW holds twice the parameters). Each Step:
//
//   1. reduce-scatters the flat gradients in place (average): rank r's shard of them becomes
//      the averaged gradients; the rest keeps this rank's local gradients;
//   2. computes the global gradient norm from the shards (each rank's sum of squares in
//      double, all-gathered and summed in rank order, so every rank gets the same value); with
//      tensor parallelism, the squares of tensor-parallel shards (Parameter::split) are then
//      added over the TP group, and those of parameters every TP rank holds whole count once,
//      as in ClipTensorParallelGradientNorm (tensor_parallel_grad_clip.h);
//   3. applies AdamW to its shard of the parameters (the same element-wise update as AdamW,
//      weight decay only on parameters with `decay`), reading the gradients clipped: times
//      ClipFactor(norm, max_norm) (grad_clip.h), the bits ClipGradientNorm's scaling gives,
//      without a pass of its own; the shard of gradients is left as it is;
//   4. all-gathers the updated shards in place, so that every rank's parameters are equal.
//
// A replacement for "all-reduce the gradients, ClipGradientNorm, AdamW::Step" on every rank:
//
//   Communicator& dp = grid->comm(ParallelAxis::kData);
//   ASSIGN_OR_RETURN(auto optimizer, ZeroAdamW::Create(dp, model->Parameters()));
//   ... forward, backward (local gradients, not reduced) ...
//   ASSIGN_OR_RETURN(double norm, optimizer->Step(schedule.At(step), /*max_norm=*/1.0));
//
// With tensor parallelism (a DP x TP ProcessGrid), each TP rank's ZeroAdamW shards its own
// parameter shards over its DP group, and Create takes the TP group for the norm:
//
//   ASSIGN_OR_RETURN(auto optimizer, ZeroAdamW::Create(dp, model->Parameters(), {},
//                                                      &grid->comm(ParallelAxis::kTensor)));
//
// Checkpoints: AddToStateDict adds AdamW's entries ("optim/exp_avg/<name>", in the
// parameter's logical shape), each rank adding the part of each moment that its shard holds:
// a range of the flattened parameter (shard), which is a few boxes of the logical tensor
// (shard_boxes.h: a partial first row, whole rows, a partial last row, per TP block). The
// pieces of all ranks tile the logical tensors: a checkpoint holds the whole state, and loads
// into AdamW or into ZeroAdamW at any data-parallel and tensor-parallel size.
//
// Devices: the parameters live where `dp` reduces (dp.device(): the cpu for mpi/ and local/, a
// CUDA device for nccl/, whose collectives, clipping and update are enqueued on the device's
// default stream, with the norm brought to the host once a step).
//
// REQUIRES: f32 parameters on dp.device() (tp, if any, on the same device), equal
// on every rank of `dp` before the first Step (same seed, or broadcast), listed in the same
// order on every rank; nothing else keeps their value or grad tensors from before Create (a
// handle taken earlier no longer aliases the parameter). Step is a collective over `dp` (and
// `tp`); Create, AddToStateDict and RestoreStep communicate nothing. Thread-compatible. `dp`,
// `tp` and the parameters must outlive the optimizer, which owns the parameters' memory from
// Create on.
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
#include "runtime/optim/internal/adamw_update.h"

namespace usine {

class ZeroAdamW {
 public:
  // Zero moments for this rank's shard; re-points every parameter's value and grad into the
  // flat buffers (see above). Not a collective (no communication). `tp`: the
  // tensor-parallel group of the parameters' splits, or null without tensor parallelism.
  // InvalidArgument naming the parameter when one is a shard of a split over other than
  // tp's size (or tp is null).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ZeroAdamW>> Create(
      Communicator& dp, std::vector<NamedParameter> parameters, const AdamWOptions& options = {},
      Communicator* tp = nullptr);

  // One update from the local gradients (steps 1-4 above) with learning rate `lr`, clipping
  // the averaged gradients to global norm `max_norm` (<= 0 or infinite: no clipping). Returns
  // the global norm of the averaged gradients before clipping. Afterwards the parameters'
  // gradients hold the averaged, clipped values in this rank's shard and the local ones
  // elsewhere (ZeroGrad before the next backward). A non-finite norm (the same on every
  // rank) updates nothing: parameters, moments and step() stay as they were. A collective
  // over `dp`.
  [[nodiscard]] absl::StatusOr<double> Step(double lr, double max_norm = 0.0);

  // Updates made so far.
  int64_t step() const { return step_; }
  // Elements of all parameters together, and of the flat vector with its padding (size()
  // shards).
  int64_t numel() const { return numel_; }
  int64_t padded_numel() const { return shard_numel_ * dp_.size(); }
  // This rank's shard: flat elements [shard_begin(), shard_begin() + shard_numel()).
  int64_t shard_begin() const { return shard_numel_ * dp_.rank(); }
  int64_t shard_numel() const { return shard_numel_; }

  // Adds this rank's pieces of "<prefix>exp_avg/<name>" and "<prefix>exp_avg_sq/<name>" (boxes
  // of tensors of the parameters' logical shapes, as handles: a checkpoint load fills them in
  // place; a parameter outside the shard adds nothing) and the int "<prefix>step".
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
  ZeroAdamW(Communicator& dp, Communicator* tp, const AdamWOptions& options)
      : dp_(dp), tp_(tp), options_(options) {}
  // sums[0] += the squares of the shard's elements of tensor-parallel shards, sums[1] += those
  // of parameters every TP rank holds whole (in double; on a device, from each segment's f32
  // norm).
  absl::Status AddSquares(const Tensor& grad_shard, double sums[2]) const;
  // Step 2: the norm of the averaged gradients (whose clipping factor step 3 applies).
  absl::StatusOr<double> GlobalNorm(const Tensor& grad_shard);
  // Step 3: AdamW on the shard (on a device, enqueued on its default stream).
  absl::Status Update(const optim_internal::AdamWCoefficients& c, const Tensor& grad_shard);

  Communicator& dp_;
  Communicator* tp_;  // Null without tensor parallelism.
  AdamWOptions options_;
  std::vector<NamedParameter> parameters_;
  std::vector<int64_t> offsets_;  // Of each parameter in the flat vector.
  std::vector<Segment> segments_;
  int64_t numel_ = 0;
  int64_t shard_numel_ = 0;
  Tensor flat_grad_;   // [padded_numel]: the parameters' gradients at offsets_, zeros elsewhere.
  Tensor flat_value_;  // [padded_numel]: the parameters' values at offsets_, zeros elsewhere.
  Tensor exp_avg_;     // [shard_numel]
  Tensor exp_avg_sq_;  // [shard_numel]
  int64_t step_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_OPTIM_ZERO_ADAMW_H_
