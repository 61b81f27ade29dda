#include "runtime/nn/parallel_mlp.h"

#include "runtime/core/status_macros.h"

namespace usine {

absl::StatusOr<std::unique_ptr<ParallelMlp>> ParallelMlp::Create(const ParallelMlpOptions& options,
                                                                 ParameterInitializer& init) {
  auto mlp = std::unique_ptr<ParallelMlp>(new ParallelMlp(options.dtype));
  ASSIGN_OR_RETURN(mlp->c_fc_, ColumnParallelLinear::Create({.in_features = options.n_embd,
                                                             .out_features = 4 * options.n_embd,
                                                             .init_stddev = options.init_stddev,
                                                             .dtype = options.dtype,
                                                             .device = options.device,
                                                             .tp = options.tp},
                                                            init));
  ASSIGN_OR_RETURN(mlp->c_proj_, RowParallelLinear::Create({.in_features = 4 * options.n_embd,
                                                            .out_features = options.n_embd,
                                                            .init_stddev = options.proj_init_stddev,
                                                            .dtype = options.dtype,
                                                            .device = options.device,
                                                            .tp = options.tp},
                                                           init));
  mlp->AddChild("c_fc", mlp->c_fc_.get());
  mlp->AddChild("gelu", &mlp->gelu_);
  mlp->AddChild("c_proj", mlp->c_proj_.get());
  return mlp;
}

absl::StatusOr<Tensor> ParallelMlp::Forward(const Tensor& x) {
  ASSIGN_OR_RETURN(Tensor h, c_fc_->Forward(x));
  ASSIGN_OR_RETURN(Tensor g, gelu_.Forward(h));
  return c_proj_->Forward(g);
}

absl::StatusOr<Tensor> ParallelMlp::Backward(const Tensor& dy) {
  ASSIGN_OR_RETURN(Tensor dg, c_proj_->Backward(dy));
  ASSIGN_OR_RETURN(Tensor dh, gelu_.Backward(dg));
  return c_fc_->Backward(dh);
}

}  // namespace usine
