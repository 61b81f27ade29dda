// A Linear layer (linear.h) split by output features over a tensor-parallel group
// (Megatron-LM's ColumnParallelLinear): each rank holds the rows of W [out, in] (and of the
// bias) for its slice of the outputs, and computes only those outputs. The input is the same
// on every rank (forward: identity); its gradient is the sum over the group of the ranks'
// partial gradients (backward: an all-reduce). With `groups` > 1 the outputs are that many
// equal blocks, each split over the ranks: c_attn's q|k|v (groups 3) gives every rank the q,
// k and v columns of the same heads. Parameters "weight" and "bias", as Linear's, each holding
// this rank's shard (Parameter::split); initialised from the full tensors (tensor_parallel.h).
// The products are Linear's (nn_internal::LinearProduct: on CUDA, bf16 operands under bf16
// products, and the input may already be one, as LayerNorm::ForwardOperand writes it), with
// Linear's optional activation, which acts on this rank's outputs alone (the MLP's GELU); the
// all-reduce is enqueued on the layers' stream. Module contract: module.h.
//
//   ASSIGN_OR_RETURN(auto c_fc, ColumnParallelLinear::Create(
//       {.in_features = 768, .out_features = 3072, .tp = &grid.comm(ParallelAxis::kTensor)},
//       init));
//   ASSIGN_OR_RETURN(Tensor h, c_fc->Forward(x));    // x [B, T, 768] -> h [B, T, 3072 / tp]
//   ASSIGN_OR_RETURN(Tensor dx, c_fc->Backward(dh)); // dx [B, T, 768], summed over TP
#ifndef USINE_RUNTIME_NN_COLUMN_PARALLEL_LINEAR_H_
#define USINE_RUNTIME_NN_COLUMN_PARALLEL_LINEAR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/internal/linear_product.h"
#include "runtime/nn/linear_activation.h"
#include "runtime/nn/linear_sublayer.h"
#include "runtime/nn/module.h"

namespace usine {

struct ColumnParallelLinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;       // Of the whole layer. REQUIRES: a multiple of groups * TP size.
  int groups = 1;                 // Output blocks split separately. Default: 1.
  bool bias = true;               // Default: with a bias (initialised to 0).
  double init_stddev = 0.02;      // Default: W ~ normal(0, 0.02).
  DType dtype = DType::kF32;      // f32 or f64 (f32 only on CUDA). Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
  // The TP group; must outlive the layer. Default: null, a group of one (a plain Linear).
  Communicator* tp = nullptr;
  LinearActivation activation = LinearActivation::kNone;  // Default: none.
  bool output_operand = false;                            // As Linear's (linear.h). Default: false.
};

class ColumnParallelLinear : public LinearSublayer {
 public:
  // Draws the full W from `init` (the same counters as Linear) and keeps this rank's rows.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ColumnParallelLinear>> Create(
      const ColumnParallelLinearOptions& options, ParameterInitializer& init);

  // x [..., in] (the same on every rank) -> y [..., out / tp], this rank's outputs (with an
  // activation, as Linear's). Saves x and the weight as the products read them.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  // dy [..., out / tp] -> dx [..., in], all-reduced over the group (a collective); adds this
  // rank's dL/dW and dL/db into the gradients.
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;
  // LinearSublayer's (linear_sublayer.h): Preactivation is this rank's columns; the other two
  // all-reduce dx (dh) as Backward does.
  [[nodiscard]] absl::StatusOr<Tensor> Preactivation() const override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardThroughGelu(const Tensor& dy,
                                                           const Tensor& preactivation) override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardFromPreactivation(const Tensor& dh) override;

  Parameter& weight() { return *weight_; }
  int64_t local_out_features() const;

 private:
  explicit ColumnParallelLinear(const ColumnParallelLinearOptions& options);
  void ClearSaved() override { product_.Clear(); }
  const Tensor* bias_grad() const { return bias_ != nullptr ? &bias_->grad : nullptr; }
  // The sum over the group of each rank's `partial` input gradient, or its error.
  absl::StatusOr<Tensor> AllReduced(absl::StatusOr<Tensor> partial) const;

  ColumnParallelLinearOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;           // nullptr without a bias.
  nn_internal::LinearProduct product_;  // Onto this rank's outputs.
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_COLUMN_PARALLEL_LINEAR_H_
