#include "runtime/nn/mlp.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/splittable_linear.h"

namespace usine {

absl::StatusOr<std::unique_ptr<Mlp>> Mlp::Create(const MlpOptions& options,
                                                 ParameterInitializer& init) {
  auto mlp = std::unique_ptr<Mlp>(new Mlp());
  const int64_t c = options.n_embd;
  ASSIGN_OR_RETURN(mlp->c_fc_, CreateSplittableLinear({.in_features = c,
                                                       .out_features = 4 * c,
                                                       .init_stddev = options.init_stddev,
                                                       .dtype = options.dtype,
                                                       .device = options.device,
                                                       .split = LinearSplit::kColumns,
                                                       .tp = options.tp,
                                                       .activation = LinearActivation::kGelu},
                                                      init));
  ASSIGN_OR_RETURN(mlp->c_proj_, CreateSplittableLinear({.in_features = 4 * c,
                                                         .out_features = c,
                                                         .init_stddev = options.proj_init_stddev,
                                                         .dtype = options.dtype,
                                                         .device = options.device,
                                                         .split = LinearSplit::kRows,
                                                         .tp = options.tp,
                                                         .input_gradient_operand = true},
                                                        init));
  mlp->AddChild("c_fc", mlp->c_fc_.get());
  mlp->AddChild("c_proj", mlp->c_proj_.get());
  return mlp;
}

absl::StatusOr<Tensor> Mlp::Forward(const Tensor& x) { return ForwardWith(x, nullptr); }

absl::StatusOr<Tensor> Mlp::ForwardAdding(const Tensor& x, const Tensor& residual) {
  return ForwardWith(x, &residual);
}

absl::StatusOr<Tensor> Mlp::ForwardWith(const Tensor& x, const Tensor* residual) {
  MarkOp("mlp.c_fc+gelu forward", x.device());
  // Written as c_proj's operand (bf16 on CUDA under bf16 products).
  ASSIGN_OR_RETURN(Tensor g, c_fc_->Forward(x));
  MarkOp("mlp.c_proj forward", x.device());
  return residual != nullptr ? c_proj_->ForwardAdding(g, *residual) : c_proj_->Forward(g);
}

absl::StatusOr<Tensor> Mlp::Backward(const Tensor& dy) {
  MarkOp("mlp.c_proj+gelu backward", dy.device());
  ASSIGN_OR_RETURN(const Tensor h, c_fc_->Preactivation());
  // The gradient of c_fc's pre-activation output, as c_fc's products read it (bf16 on CUDA
  // under bf16 products).
  ASSIGN_OR_RETURN(Tensor dh, c_proj_->BackwardThroughGelu(dy, h));
  MarkOp("mlp.c_fc backward", dy.device());
  return c_fc_->BackwardFromPreactivation(dh);
}

}  // namespace usine
