// One optimizer step of a Gpt trained tensor- and/or data-parallel: zero the gradients,
// forward, backward (each child's gradients marked ready as backward finishes it, so the
// data-parallel buckets reduce while backward goes on), the reducer's Finish, global-norm
// clipping over the whole model (tensor_parallel_grad_clip.h), AdamW.
//
//   ASSIGN_OR_RETURN(auto reducer, AttachGradientReducer(*model, dp));      // data_parallel.h
//   ASSIGN_OR_RETURN(auto adamw, AdamW::Create(model->Parameters()));
//   for (...) {
//     ASSIGN_OR_RETURN(TrainStepResult r, TrainStep(*model, local_tokens, *adamw,
//                                                  {.lr = 6e-4, .reducer = reducer.get(),
//                                                   .dp = &dp}));
//   }
//
// Every rank of the model's TP group and of `dp` calls it in step (it is a collective over
// both). Not thread-safe.
#ifndef USINE_RUNTIME_TRAIN_TRAIN_STEP_H_
#define USINE_RUNTIME_TRAIN_TRAIN_STEP_H_

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "collectives/gradient_reducer.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"

namespace usine {

struct TrainStepOptions {
  double lr = 0;
  double max_grad_norm = 1.0;  // <= 0: no clipping. Default: 1.
  // The model's gradients' reducer (AttachGradientReducer) over `dp`; null without data
  // parallelism. Default: null.
  GradientReducer* reducer = nullptr;
  // The data-parallel group, for the loss's average; null: this rank alone. Default: null.
  Communicator* dp = nullptr;
};

struct TrainStepResult {
  double loss = 0;       // The mean loss over the global batch (averaged over dp).
  double grad_norm = 0;  // The whole model's gradient norm before clipping.
};

// tokens: this data-parallel rank's [B / dp, T + 1] rows of the global batch (each DP rank
// an equal share, so that the average over DP ranks is the mean over the batch).
[[nodiscard]] absl::StatusOr<TrainStepResult> TrainStep(Gpt& model, const Tensor& tokens,
                                                        AdamW& optimizer,
                                                        const TrainStepOptions& options);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_TRAIN_STEP_H_
