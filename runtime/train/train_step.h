// One optimizer step of a TokenModel (token_model.h) trained tensor- and/or data-parallel,
// with gradient accumulation over micro-batches: zero the gradients; forward and backward
// each micro-batch (the last backward marks each child's gradients ready as it finishes
// them, so the data-parallel buckets reduce while backward goes on); the reducer's Finish;
// global-norm clipping over the whole model (tensor_parallel_grad_clip.h); AdamW. The clipping
// factor is applied as AdamW reads the gradients (AdamW::Step's grad_scale, ZeroAdamW::Step's
// max_norm): the update is that of clipped gradients, bit for bit, and the gradients are left
// unclipped.
//
//   ASSIGN_OR_RETURN(auto reducer, AttachGradientReducer(*model, dp));      // data_parallel.h
//   ASSIGN_OR_RETURN(auto adamw, AdamW::Create(model->Parameters()));
//   for (...) {
//     ASSIGN_OR_RETURN(TrainStepResult r, TrainStep(*model, {micro0, micro1}, *adamw,
//                                                  {.lr = 6e-4, .reducer = reducer.get(),
//                                                   .dp = &dp}));
//   }
//
// With ZeroAdamW (ZeRO-1) there is no reducer: backward accumulates local gradients and the
// optimizer's Step reduce-scatters them, clips and updates its shard (its time counts as the
// optimizer's); it clips over the tensor-parallel group it was created with (zero_adamw.h).
//
// Non-finite values: the ranks agree (one small all-reduce over `dp`, before the last
// backward and so before any gradient is reduced) whether every micro-batch's loss is
// finite; if one is not, on any rank, every rank skips the step. A non-finite gradient norm
// also skips it: the norm is taken after the data-parallel average, which carries a NaN or
// an infinity of any rank into every rank's gradients, and over the tensor-parallel group, so
// every rank sees the same verdict without another collective. A skipped step leaves the
// parameters and the optimizer state as they were (the gradients are garbage until the next
// step zeroes them).
//
// Every rank of the model's TP group and of `dp` calls it in step (it is a collective over
// both). Not thread-safe.
#ifndef USINE_RUNTIME_TRAIN_TRAIN_STEP_H_
#define USINE_RUNTIME_TRAIN_TRAIN_STEP_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "collectives/communicator.h"
#include "collectives/gradient_reducer.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/token_model.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/zero_adamw.h"

namespace usine {

struct TrainStepOptions {
  double lr = 0;
  double max_grad_norm = 1.0;  // <= 0: no clipping. Default: 1.
  // The model's gradients' reducer (AttachGradientReducer) over `dp`; null without data
  // parallelism. Default: null.
  GradientReducer* reducer = nullptr;
  // The data-parallel group, for the loss's average and the agreement on skipping; null:
  // this rank alone. Default: null.
  Communicator* dp = nullptr;
};

// Where a step's time went on this rank (wall clock).
struct TrainStepTimes {
  absl::Duration forward;
  absl::Duration backward;
  absl::Duration communication;  // Exposed: waiting for the reductions after backward.
  absl::Duration optimizer;      // Clipping and the update.
};

struct TrainStepResult {
  double loss = 0;       // The mean loss over the global batch (micro-batches and dp ranks).
  double grad_norm = 0;  // The whole model's gradient norm before clipping (NaN if skipped
                         // before backward).
  bool skipped = false;  // A non-finite loss or gradient norm: nothing was updated.
  TrainStepTimes times;
};

// micro_batches: this data-parallel rank's micro-batches of the global batch, [b, T + 1] each
// (every DP rank the same number of equal micro-batches, so that the average over them and
// over DP ranks is the mean over the batch). REQUIRES: at least one.
[[nodiscard]] absl::StatusOr<TrainStepResult> TrainStep(TokenModel& model,
                                                        absl::Span<const Tensor> micro_batches,
                                                        AdamW& optimizer,
                                                        const TrainStepOptions& options);

[[nodiscard]] absl::StatusOr<TrainStepResult> TrainStep(TokenModel& model,
                                                        absl::Span<const Tensor> micro_batches,
                                                        ZeroAdamW& optimizer,
                                                        const TrainStepOptions& options);

// The mean of `value` over the ranks of `group` in double, the same bits on every rank (the
// communicators reduce no f64: gathered and added in rank order). A null group: `value`.
[[nodiscard]] absl::StatusOr<double> AverageOverRanks(Communicator* group, double value);

// True on every rank of `group` when `flag` is true on any of them (a null group: `flag`).
[[nodiscard]] absl::StatusOr<bool> AnyRank(Communicator* group, bool flag);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_TRAIN_STEP_H_
