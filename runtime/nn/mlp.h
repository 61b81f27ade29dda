// GPT-2's feed-forward block: c_fc (Linear C -> 4C), GELU (tanh), c_proj (Linear 4C -> C).
// Children "c_fc" (a Linear with the GELU as its activation, linear_activation.h, so that the
// product and the GELU share their passes over the 4C-wide hidden layer) and "c_proj". In the
// backward pass c_proj's input-gradient product applies the GELU's derivative, and c_fc takes
// the gradient of its pre-activation output (linear_sublayer.h). Module contract: module.h.
//
// Split over a tensor-parallel group (MlpOptions::tp, Megatron-LM's): c_fc is a
// ColumnParallelLinear (rank r computes hidden units [r 4C / tp, (r + 1) 4C / tp)), GELU runs
// on those units alone (c_fc's activation), and c_proj is a RowParallelLinear over them: input and
// output whole on every rank, one all-reduce forward (c_proj) and one backward (c_fc's input
// gradient); the same parameter names, each rank holding its shard of the weights the unsplit Mlp
// draws.
//
//   ASSIGN_OR_RETURN(auto mlp, Mlp::Create({.n_embd = 768}, init));  // .tp = &tp_comm to split
//   ASSIGN_OR_RETURN(Tensor y, mlp->Forward(x));
//   ASSIGN_OR_RETURN(Tensor dx, mlp->Backward(dy));
#ifndef USINE_RUNTIME_NN_MLP_H_
#define USINE_RUNTIME_NN_MLP_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/linear_sublayer.h"
#include "runtime/nn/module.h"
#include "runtime/nn/sublayer.h"

namespace usine {

struct MlpOptions {
  int64_t n_embd = 0;
  double init_stddev = 0.02;       // c_fc's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  // The TP group; outlives the layer. REQUIRES: its size divides 4 n_embd. Default: null, no
  // split (as is a group of one).
  Communicator* tp = nullptr;
};

class Mlp : public Sublayer {
 public:
  // Draws c_fc's weights, then c_proj's, from `init`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Mlp>> Create(const MlpOptions& options,
                                                                   ParameterInitializer& init);

  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  // residual + Forward(x) (sublayer.h), the sum made by c_proj's ForwardAdding.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardAdding(const Tensor& x,
                                                     const Tensor& residual) override;
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;

 private:
  Mlp() = default;
  // Forward, plus *residual unless null.
  absl::StatusOr<Tensor> ForwardWith(const Tensor& x, const Tensor* residual);

  std::unique_ptr<LinearSublayer> c_fc_;    // Linear, or ColumnParallelLinear under TP; GELU.
  std::unique_ptr<LinearSublayer> c_proj_;  // Linear, or RowParallelLinear under TP.
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_MLP_H_
