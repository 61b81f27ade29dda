#include "runtime/nn/attention.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/internal/cpu_cached_attention.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/splittable_linear.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

namespace ni = nn_internal;

namespace {

// OK when `cache` is as CreateCache makes it for `batch` sequences of a layer whose heads
// here are `width` columns wide.
absl::Status CheckCache(const AttentionCache& cache, int64_t batch, int64_t width, DType dtype,
                        Device device) {
  const int64_t capacity = cache.keys.rank() == 3 ? cache.keys.dim(1) : 0;
  for (const Tensor* t : {&cache.keys, &cache.values}) {
    RETURN_IF_ERROR(CheckShape(*t, {batch, capacity, width}, "CausalSelfAttention cache"));
    RETURN_IF_ERROR(CheckDType(*t, dtype, "CausalSelfAttention cache"));
    RETURN_IF_ERROR(CheckDevice(*t, device, "CausalSelfAttention cache"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CausalSelfAttention>> CausalSelfAttention::Create(
    const AttentionOptions& options, ParameterInitializer& init) {
  const int tp = TensorParallelSize(options.tp);
  if (options.n_head < 1 || options.n_embd < 1 || options.n_embd % options.n_head != 0 ||
      options.n_head % tp != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CausalSelfAttention: n_head ", options.n_head, " must divide n_embd ",
                     options.n_embd, " and be a multiple of the tensor-parallel size ", tp));
  }
  if (options.kernel == AttentionKernel::kFlash) {
    if (!options.device.is_cuda()) {
      return absl::InvalidArgumentError(
          absl::StrCat("CausalSelfAttention: the flash kernel (AttentionKernel::kFlash) runs on "
                       "CUDA devices only, not on ",
                       options.device.ToString()));
    }
    if (options.n_embd / options.n_head > ni::kFlashAttentionMaxHeadDim) {
      return absl::InvalidArgumentError(
          absl::StrCat("CausalSelfAttention: the flash kernel takes heads of at most ",
                       ni::kFlashAttentionMaxHeadDim, " (n_embd / n_head), got ",
                       options.n_embd / options.n_head));
    }
  }
  auto attn = std::unique_ptr<CausalSelfAttention>(new CausalSelfAttention(options));
  const int64_t c = options.n_embd;
  // The bf16 flash kernels read and write bf16 arrays (head sizes that are multiples of 16):
  // under bf16 products c_attn writes q|k|v so, and c_proj's backward pass its input gradient.
  const bool bf16_qkv = options.kernel == AttentionKernel::kFlash && (c / options.n_head) % 16 == 0;
  ASSIGN_OR_RETURN(attn->c_attn_, CreateSplittableLinear({.in_features = c,
                                                          .out_features = 3 * c,
                                                          .groups = 3,
                                                          .init_stddev = options.init_stddev,
                                                          .dtype = options.dtype,
                                                          .device = options.device,
                                                          .split = LinearSplit::kColumns,
                                                          .tp = options.tp,
                                                          .output_operand = bf16_qkv},
                                                         init));
  ASSIGN_OR_RETURN(attn->c_proj_, CreateSplittableLinear({.in_features = c,
                                                          .out_features = c,
                                                          .init_stddev = options.proj_init_stddev,
                                                          .dtype = options.dtype,
                                                          .device = options.device,
                                                          .split = LinearSplit::kRows,
                                                          .tp = options.tp,
                                                          .input_gradient_operand = bf16_qkv},
                                                         init));
  attn->AddChild("c_attn", attn->c_attn_.get());
  attn->AddChild("c_proj", attn->c_proj_.get());
  return attn;
}

int64_t CausalSelfAttention::local_heads() const {
  return options_.n_head / TensorParallelSize(options_.tp);
}

absl::Status CausalSelfAttention::CheckInput(const Tensor& x) const {
  RETURN_IF_ERROR(ni::CheckProductInput(x, options_.dtype, options_.device, options_.n_embd,
                                        "CausalSelfAttention input"));
  if (x.rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("CausalSelfAttention input: expected [B, T, C], got ", x.DebugString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CausalSelfAttention::Forward(const Tensor& x) {
  return ForwardWith(x, nullptr);
}

absl::StatusOr<Tensor> CausalSelfAttention::ForwardAdding(const Tensor& x, const Tensor& residual) {
  return ForwardWith(x, &residual);
}

absl::StatusOr<Tensor> CausalSelfAttention::Project(const Tensor& out, const Tensor* residual) {
  MarkOp("attn.c_proj forward", options_.device);
  return residual != nullptr ? c_proj_->ForwardAdding(out, *residual) : c_proj_->Forward(out);
}

absl::StatusOr<Tensor> CausalSelfAttention::ForwardWith(const Tensor& x, const Tensor* residual) {
  const Device device = options_.device;
  RETURN_IF_ERROR(CheckInput(x));
  const ni::AttentionDims d{x.dim(0), x.dim(1), local_heads(), options_.n_embd / options_.n_head};
  MarkOp("attn.c_attn forward", device);
  ASSIGN_OR_RETURN(Tensor qkv, c_attn_->Forward(x));
  MarkOp("attn.core forward", device);
  const Shape out_shape{d.batch, d.seq, d.heads * d.head_dim};
  if (options_.kernel == AttentionKernel::kFlash) {  // On a CUDA device (Create).
    // In qkv's dtype: bf16 under bf16 products, c_proj's operand.
    ASSIGN_OR_RETURN(Tensor out, Tensor::Empty(out_shape, qkv.dtype(), device));
    ASSIGN_OR_RETURN(Tensor lse, Tensor::Empty({d.batch, d.heads, d.seq}, options_.dtype, device));
    RETURN_IF_ERROR(ni::CudaFlashAttentionForward(qkv, d, out, lse));
    saved_ = Saved{.qkv = qkv, .lse = lse, .out = out, .dims = d};
    return Project(out, residual);
  }
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty(out_shape, options_.dtype, device));
  ASSIGN_OR_RETURN(Tensor probs,
                   Tensor::Empty({d.batch, d.heads, d.seq, d.seq}, options_.dtype, device));
  if (device.is_cuda()) {
    ASSIGN_OR_RETURN(Tensor heads, Tensor::Empty({3, d.batch, d.heads, d.seq, d.head_dim},
                                                 options_.dtype, device));
    RETURN_IF_ERROR(ni::CudaCausalAttentionForward(qkv, d, out, heads, probs));
    saved_ = Saved{.qkv = heads, .probs = probs, .dims = d};
    return Project(out, residual);
  }
  ni::VisitReal(options_.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::CausalAttentionForward(ni::Elements<T>(qkv), d, ni::Elements<T>(out),
                               ni::Elements<T>(probs));
  });
  saved_ = Saved{.qkv = qkv, .probs = probs, .dims = d};
  return Project(out, residual);
}

absl::StatusOr<AttentionCache> CausalSelfAttention::CreateCache(int64_t batch,
                                                                int64_t capacity) const {
  const int64_t head_dim = options_.n_embd / options_.n_head;
  if (options_.device.is_cuda() && head_dim > ni::kCachedAttentionMaxHeadDim) {
    return absl::UnimplementedError(
        absl::StrCat("CausalSelfAttention cache on ", options_.device.ToString(),
                     ": the cached kernel takes heads of at most ", ni::kCachedAttentionMaxHeadDim,
                     " (n_embd / n_head), got ", head_dim));
  }
  if (batch < 1 || capacity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CausalSelfAttention cache: batch and capacity must be positive, got ", batch,
                     ", ", capacity));
  }
  const Shape shape{batch, capacity, local_heads() * head_dim};
  AttentionCache cache;
  ASSIGN_OR_RETURN(cache.keys, Tensor::Empty(shape, options_.dtype, options_.device));
  ASSIGN_OR_RETURN(cache.values, Tensor::Empty(shape, options_.dtype, options_.device));
  return cache;
}

absl::StatusOr<Tensor> CausalSelfAttention::ForwardCached(const Tensor& x, AttentionCache& cache) {
  const Device device = options_.device;
  RETURN_IF_ERROR(CheckInput(x));
  const int64_t head_dim = options_.n_embd / options_.n_head;
  const int64_t width = local_heads() * head_dim;
  RETURN_IF_ERROR(CheckCache(cache, x.dim(0), width, options_.dtype, device));
  const ni::CachedAttentionDims d{.batch = x.dim(0),
                                  .fresh = x.dim(1),
                                  .past = cache.length,
                                  .capacity = cache.keys.dim(1),
                                  .heads = local_heads(),
                                  .head_dim = head_dim};
  if (d.past < 0 || d.past + d.fresh > d.capacity) {
    return absl::InvalidArgumentError(absl::StrCat("CausalSelfAttention cache: ", d.fresh,
                                                   " more positions after ", d.past,
                                                   " exceed its capacity of ", d.capacity));
  }
  ASSIGN_OR_RETURN(Tensor qkv, c_attn_->Forward(x));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty({d.batch, d.fresh, width}, options_.dtype, device));
  if (device.is_cuda()) {
    // qkv in f32 or, under bf16 products with the flash kernel, bf16.
    RETURN_IF_ERROR(ni::CudaCachedAttentionForward(qkv, d, cache.keys, cache.values, out));
  } else {
    ni::VisitReal(options_.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ni::CachedAttentionForward(ni::Elements<T>(qkv), d, ni::Elements<T>(cache.keys),
                                 ni::Elements<T>(cache.values), ni::Elements<T>(out));
    });
  }
  absl::StatusOr<Tensor> y = c_proj_->Forward(out);
  ReleaseActivations();  // Inference: nothing is kept for a Backward.
  if (y.ok()) cache.length += d.fresh;
  return y;
}

absl::StatusOr<Tensor> CausalSelfAttention::Backward(const Tensor& dy) {
  if (!saved_) {
    return absl::FailedPreconditionError("CausalSelfAttention::Backward before Forward");
  }
  const Device device = options_.device;
  MarkOp("attn.c_proj backward", device);
  ASSIGN_OR_RETURN(Tensor dout, c_proj_->Backward(dy));
  MarkOp("attn.core backward", device);
  const Tensor& qkv = saved_->qkv;
  const ni::AttentionDims& d = saved_->dims;
  // (Unfused on CUDA, saved_->qkv holds the heads laid out [3, B, H, T, D], not c_attn's
  // output. With kFlash under bf16 products it is in bf16, as are dout, written so by c_proj, and
  // dqkv, which c_attn's Backward takes as its products' operand.)
  const Shape dqkv_shape{d.batch, d.seq, 3 * d.heads * d.head_dim};
  if (options_.kernel == AttentionKernel::kFlash) {
    ASSIGN_OR_RETURN(Tensor dqkv, Tensor::Empty(dqkv_shape, qkv.dtype(), device));
    RETURN_IF_ERROR(ni::CudaFlashAttentionBackward(dout, qkv, saved_->out, saved_->lse, d, dqkv));
    MarkOp("attn.c_attn backward", device);
    return c_attn_->Backward(dqkv);
  }
  ASSIGN_OR_RETURN(Tensor dqkv, Tensor::Empty(dqkv_shape, options_.dtype, device));
  if (device.is_cuda()) {
    RETURN_IF_ERROR(ni::CudaCausalAttentionBackward(dout, qkv, saved_->probs, d, dqkv));
    MarkOp("attn.c_attn backward", device);
    return c_attn_->Backward(dqkv);
  }
  ni::VisitReal(dy.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ni::CausalAttentionBackward(ni::Elements<T>(dout), ni::Elements<T>(qkv),
                                ni::Elements<T>(saved_->probs), d, ni::Elements<T>(dqkv));
  });
  MarkOp("attn.c_attn backward", device);
  return c_attn_->Backward(dqkv);
}

}  // namespace usine
