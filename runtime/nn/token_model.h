// What the Trainer (runtime/train/trainer.h) trains: a module that reads a batch of token
// rows and returns the mean loss of predicting each row's next tokens, and whose Backward
// adds that loss's gradients into its parameters. Gpt is one; a user's own language model
// derives from TokenModel the same way (examples/custom_model/).
//
//   class MyModel : public TokenModel {
//    public:
//     absl::StatusOr<double> Forward(const Tensor& tokens) override;   // [B, T+1] ids
//     absl::Status Backward(double dloss, const GradientsFinal& on_final) override;
//   };
//
// Module's contract holds (module.h): Forward saves what Backward needs; Backward adds
// dloss * d(loss)/d(parameter) into every gradient, then drops the activations.
// Thread-compatible.
#ifndef USINE_RUNTIME_NN_TOKEN_MODEL_H_
#define USINE_RUNTIME_NN_TOKEN_MODEL_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

class TokenModel : public Module {
 public:
  // Called by Backward with a child module as soon as that child's gradients are final for
  // this Backward, so that their data-parallel reduction can start while backward goes on
  // (train/data_parallel.h). An error stops Backward and is returned.
  using GradientsFinal = std::function<absl::Status(Module& finished)>;

  // The mean loss over tokens[b, 1..T] predicted from tokens[b, 0..T-1]; the same value on
  // every rank of tp(). tokens: [B, T+1] u16 or i32 ids, as a DataStream batch comes.
  [[nodiscard]] virtual absl::StatusOr<double> Forward(const Tensor& tokens) = 0;

  // The loss Forward returns, with nothing kept for a Backward (evaluation): by default
  // Forward, then ReleaseActivations; a model may hold less on the way (Gpt keeps one
  // block's activations at a time).
  [[nodiscard]] virtual absl::StatusOr<double> InferenceLoss(const Tensor& tokens) {
    absl::StatusOr<double> loss = Forward(tokens);
    ReleaseActivations();
    return loss;
  }

  // Adds the gradients of dloss * (the last Forward's loss) into the parameters' gradients
  // (dloss = 1 / micro-batches averages over gradient accumulation), then drops the
  // activations. `on_final` (may be null) is told of finished children; a model that never
  // calls it still trains, its gradients then reduce after Backward returns (every parameter
  // not reported is marked ready at the end by the caller).
  [[nodiscard]] virtual absl::Status Backward(double dloss = 1.0,
                                              const GradientsFinal& on_final = nullptr) = 0;

  // The tensor-parallel group the model's layers split over, or null (no tensor parallelism).
  virtual Communicator* tp() const { return nullptr; }
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_TOKEN_MODEL_H_
