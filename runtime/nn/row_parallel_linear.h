// A Linear layer (linear.h) split by input features over a tensor-parallel group
// (Megatron-LM's RowParallelLinear): each rank holds the columns of W [out, in] for its slice
// of the inputs and takes only that slice of x (what a ColumnParallelLinear before it
// produced). Forward all-reduces the ranks' partial products (a collective) and adds the
// bias once, so every rank gets the whole output; backward needs no communication: dx is this
// rank's slice. The bias is replicated (Parameter::split is whole): its gradient, computed
// from the same dy on every rank, is the same everywhere. Parameters "weight" (this rank's
// columns; initialised from the full tensor, tensor_parallel.h) and "bias", as Linear's.
// The products are Linear's (nn_internal::LinearProduct: on CUDA, bf16 operands under bf16
// products, and the input may already be one, as a GELU-activated layer writes it); the
// all-reduce is enqueued on the layers' stream. Module contract: module.h.
//
//   ASSIGN_OR_RETURN(auto c_proj, RowParallelLinear::Create(
//       {.in_features = 3072, .out_features = 768, .tp = &grid.comm(ParallelAxis::kTensor)},
//       init));
//   ASSIGN_OR_RETURN(Tensor y, c_proj->Forward(g));   // g [B, T, 3072 / tp] -> y [B, T, 768]
//   ASSIGN_OR_RETURN(Tensor dg, c_proj->Backward(dy)); // dg [B, T, 3072 / tp]
#ifndef USINE_RUNTIME_NN_ROW_PARALLEL_LINEAR_H_
#define USINE_RUNTIME_NN_ROW_PARALLEL_LINEAR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/internal/linear_product.h"
#include "runtime/nn/linear_sublayer.h"
#include "runtime/nn/module.h"

namespace usine {

struct RowParallelLinearOptions {
  int64_t in_features = 0;  // Of the whole layer. REQUIRES: a multiple of the TP size.
  int64_t out_features = 0;
  bool bias = true;               // Default: with a bias (initialised to 0).
  double init_stddev = 0.02;      // Default: W ~ normal(0, 0.02).
  DType dtype = DType::kF32;      // f32 or f64 (f32 only on CUDA). Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
  // The TP group; must outlive the layer. Default: null, a group of one (a plain Linear).
  Communicator* tp = nullptr;
  // As Linear's (linear.h): each rank's dx is its own slice of the input's gradient, with no
  // collective. Default: false.
  bool input_gradient_operand = false;
};

class RowParallelLinear : public LinearSublayer {
 public:
  // Draws the full W from `init` (the same counters as Linear) and keeps this rank's columns.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RowParallelLinear>> Create(
      const RowParallelLinearOptions& options, ParameterInitializer& init);

  // x [..., in / tp] (this rank's slice) -> y [..., out], all-reduced over the group. Saves x
  // and the weight as the products read them.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  // residual + Forward(x) (sublayer.h): rank 0's product adds the residual (the same on every
  // rank) with the bias, so that the all-reduced sum holds it once.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardAdding(const Tensor& x,
                                                     const Tensor& residual) override;
  // dy [..., out] (the same on every rank) -> dx [..., in / tp]; adds dL/dW (this rank's
  // columns) and dL/db into the gradients. No communication.
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;
  // LinearSublayer's (linear_sublayer.h), each rank on its slice, with no communication. The
  // layer has no activation: Preactivation and BackwardFromPreactivation fail.
  [[nodiscard]] absl::StatusOr<Tensor> Preactivation() const override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardThroughGelu(const Tensor& dy,
                                                           const Tensor& preactivation) override;
  [[nodiscard]] absl::StatusOr<Tensor> BackwardFromPreactivation(const Tensor& dh) override;

  Parameter& weight() { return *weight_; }
  int64_t local_in_features() const;

 private:
  explicit RowParallelLinear(const RowParallelLinearOptions& options);
  // Forward, plus *residual unless null.
  absl::StatusOr<Tensor> ForwardWith(const Tensor& x, const Tensor* residual);
  void ClearSaved() override { product_.Clear(); }
  const Tensor* bias_grad() const { return bias_ != nullptr ? &bias_->grad : nullptr; }

  RowParallelLinearOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;           // nullptr without a bias.
  nn_internal::LinearProduct product_;  // Over this rank's inputs.
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_ROW_PARALLEL_LINEAR_H_
