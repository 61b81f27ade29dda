#include "runtime/nn/parallel_attention.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<ParallelSelfAttention>> ParallelSelfAttention::Create(
    const ParallelAttentionOptions& options, ParameterInitializer& init) {
  const int tp = TensorParallelSize(options.tp);
  if (options.n_head < 1 || options.n_embd < 1 || options.n_embd % options.n_head != 0 ||
      options.n_head % tp != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ParallelSelfAttention: n_head ", options.n_head, " must divide n_embd ",
                     options.n_embd, " and be a multiple of the tensor-parallel size ", tp));
  }
  auto attn = std::unique_ptr<ParallelSelfAttention>(new ParallelSelfAttention(options));
  ASSIGN_OR_RETURN(attn->c_attn_, ColumnParallelLinear::Create({.in_features = options.n_embd,
                                                                .out_features = 3 * options.n_embd,
                                                                .groups = 3,
                                                                .init_stddev = options.init_stddev,
                                                                .dtype = options.dtype,
                                                                .device = options.device,
                                                                .tp = options.tp},
                                                               init));
  ASSIGN_OR_RETURN(attn->c_proj_,
                   RowParallelLinear::Create({.in_features = options.n_embd,
                                              .out_features = options.n_embd,
                                              .init_stddev = options.proj_init_stddev,
                                              .dtype = options.dtype,
                                              .device = options.device,
                                              .tp = options.tp},
                                             init));
  attn->AddChild("c_attn", attn->c_attn_.get());
  attn->AddChild("c_proj", attn->c_proj_.get());
  return attn;
}

int64_t ParallelSelfAttention::local_heads() const {
  return options_.n_head / TensorParallelSize(options_.tp);
}

absl::StatusOr<Tensor> ParallelSelfAttention::Forward(const Tensor& x) {
  RETURN_IF_ERROR(ni::CheckLayerInput(x, options_.dtype, options_.device, options_.n_embd,
                                      "ParallelSelfAttention input"));
  if (x.rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("ParallelSelfAttention input: expected [B, T, C], got ", x.DebugString()));
  }
  const ni::AttentionDims d{x.dim(0), x.dim(1), local_heads(), options_.n_embd / options_.n_head};
  ASSIGN_OR_RETURN(Tensor qkv, c_attn_->Forward(x));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty({d.batch, d.seq, d.heads * d.head_dim}, x.dtype()));
  ASSIGN_OR_RETURN(Tensor probs, Tensor::Empty({d.batch, d.heads, d.seq, d.seq}, x.dtype()));
  ni::VisitReal(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::CausalAttentionForward(ni::Elements<T>(qkv), d, ni::Elements<T>(out),
                               ni::Elements<T>(probs));
  });
  saved_ = Saved{qkv, probs};
  return c_proj_->Forward(out);
}

absl::StatusOr<Tensor> ParallelSelfAttention::Backward(const Tensor& dy) {
  if (!saved_) {
    return absl::FailedPreconditionError("ParallelSelfAttention::Backward before Forward");
  }
  ASSIGN_OR_RETURN(Tensor dout, c_proj_->Backward(dy));
  const Tensor& qkv = saved_->qkv;
  const ni::AttentionDims d{qkv.dim(0), qkv.dim(1), local_heads(),
                            options_.n_embd / options_.n_head};
  ASSIGN_OR_RETURN(Tensor dqkv, Tensor::Empty(qkv.shape(), qkv.dtype()));
  ni::VisitReal(dy.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::CausalAttentionBackward(ni::Elements<T>(dout), ni::Elements<T>(qkv),
                                ni::Elements<T>(saved_->probs), d, ni::Elements<T>(dqkv));
  });
  return c_attn_->Backward(dqkv);
}

}  // namespace usine
