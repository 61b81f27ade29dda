#include "runtime/nn/block.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/residual_sum.h"

namespace usine {

namespace ni = nn_internal;

absl::StatusOr<std::unique_ptr<Block>> Block::Create(const BlockOptions& options,
                                                     ParameterInitializer& init) {
  auto block = std::unique_ptr<Block>(new Block(options));
  const LayerNormOptions ln{.dim = options.n_embd,
                            .dtype = options.dtype,
                            .device = options.device,
                            .gradients = init.gradients()};
  ASSIGN_OR_RETURN(block->ln_1_, LayerNorm::Create(ln));
  ASSIGN_OR_RETURN(block->attn_,
                   CausalSelfAttention::Create({.n_embd = options.n_embd,
                                                .n_head = options.n_head,
                                                .init_stddev = options.init_stddev,
                                                .proj_init_stddev = options.proj_init_stddev,
                                                .dtype = options.dtype,
                                                .device = options.device,
                                                .tp = options.tp,
                                                .kernel = options.attention},
                                               init));
  ASSIGN_OR_RETURN(block->mlp_, Mlp::Create({.n_embd = options.n_embd,
                                             .init_stddev = options.init_stddev,
                                             .proj_init_stddev = options.proj_init_stddev,
                                             .dtype = options.dtype,
                                             .device = options.device,
                                             .tp = options.tp},
                                            init));
  ASSIGN_OR_RETURN(block->ln_2_, LayerNorm::Create(ln));
  block->AddChild("ln_1", block->ln_1_.get());
  block->AddChild("attn", block->attn_.get());
  block->AddChild("ln_2", block->ln_2_.get());
  block->AddChild("mlp", block->mlp_.get());
  return block;
}

absl::StatusOr<Tensor> Block::ForwardChildren(const Tensor& x, AttentionCache* cache) {
  const Device device = options_.device;
  MarkOp("ln_1 forward", device);
  // ln_1's and ln_2's only readers are c_attn and c_fc: written as their operands.
  ASSIGN_OR_RETURN(Tensor a, ln_1_->ForwardOperand(x));
  // Each residual sum is made by the branch's last product where it can (Sublayer's
  // ForwardAdding); decoding adds its attention's output in a pass of its own.
  Tensor r;
  if (cache != nullptr) {
    ASSIGN_OR_RETURN(a, attn_->ForwardCached(a, *cache));
    MarkOp("residual forward", device);
    ASSIGN_OR_RETURN(r, ni::ResidualSum(x, a, "Block attention output"));
  } else {
    ASSIGN_OR_RETURN(r, attn_->ForwardAdding(a, x));
  }
  MarkOp("ln_2 forward", device);
  ASSIGN_OR_RETURN(Tensor m, ln_2_->ForwardOperand(r));
  return mlp_->ForwardAdding(m, r);
}

absl::StatusOr<Tensor> Block::Forward(const Tensor& x) {
  ASSIGN_OR_RETURN(Tensor y, ForwardChildren(x));
  if (options_.recompute) {
    ReleaseActivations();
    x_ = x;
  }
  return y;
}

absl::StatusOr<AttentionCache> Block::CreateCache(int64_t batch, int64_t capacity) const {
  return attn_->CreateCache(batch, capacity);
}

absl::StatusOr<Tensor> Block::ForwardCached(const Tensor& x, AttentionCache& cache) {
  absl::StatusOr<Tensor> y = ForwardChildren(x, &cache);
  ReleaseActivations();  // Inference: nothing is kept for a Backward.
  return y;
}

absl::StatusOr<Tensor> Block::Backward(const Tensor& dy) {
  if (options_.recompute) {
    if (!x_) return absl::FailedPreconditionError("Block::Backward before Forward");
    RETURN_IF_ERROR(ForwardChildren(*x_).status());
    x_.reset();
  }
  const Device device = options_.device;
  // Each residual stream's gradient is its LayerNorm's plus the skip connection's, joined by
  // the LayerNorm's backward pass.
  ASSIGN_OR_RETURN(const Tensor dm, mlp_->Backward(dy));
  MarkOp("ln_2 backward", device);
  ASSIGN_OR_RETURN(const Tensor dr, ln_2_->BackwardWithSkip(dm, dy));
  ASSIGN_OR_RETURN(const Tensor da, attn_->Backward(dr));
  MarkOp("ln_1 backward", device);
  return ln_1_->BackwardWithSkip(da, dr);
}

}  // namespace usine
