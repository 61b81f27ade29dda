// Causal multi-head self-attention, GPT-2's: c_attn (Linear C -> 3C, q|k|v), scaled dot
// product per head with a causal mask and softmax, c_proj (Linear C -> C). Children "c_attn"
// and "c_proj". Module contract: module.h.
//
// Split over a tensor-parallel group (AttentionOptions::tp, Megatron-LM's): the heads are
// divided among the ranks; c_attn is a ColumnParallelLinear cut per q|k|v block (rank r holds
// the q, k and v columns of its heads), the heads run locally, and c_proj is a
// RowParallelLinear over their outputs: input and output whole on every rank, one all-reduce
// forward and one backward. Same parameter names; each rank holds its shard of the weights
// the unsplit layer draws. The split runs on the cpu and on CUDA (an NCCL group).
//
// Decoding (ForwardCached, on the cpu and on CUDA): new positions attend to the keys and values
// of the earlier ones, kept in an AttentionCache, so that each position's c_attn runs once.
//
//   ASSIGN_OR_RETURN(auto attn, CausalSelfAttention::Create({.n_embd = 768, .n_head = 12}, init));
//   ASSIGN_OR_RETURN(Tensor y, attn->Forward(x));   // x [B, T, 768]
//   ASSIGN_OR_RETURN(Tensor dx, attn->Backward(dy));
//
//   ASSIGN_OR_RETURN(AttentionCache cache, attn->CreateCache(/*batch=*/1, /*capacity=*/1024));
//   ASSIGN_OR_RETURN(Tensor y, attn->ForwardCached(prompt, cache));   // prompt [1, T, 768]
//   ASSIGN_OR_RETURN(y, attn->ForwardCached(next, cache));            // next [1, 1, 768]
#ifndef USINE_RUNTIME_NN_ATTENTION_H_
#define USINE_RUNTIME_NN_ATTENTION_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/module.h"
#include "runtime/nn/sublayer.h"

namespace usine {

// How a CUDA attention layer computes softmax(q k^T / sqrt(D)) v, causally, per head.
enum class AttentionKernel {
  // Per-head cuBLAS products around a causal softmax kernel, keeping the [B, H, T, T]
  // probabilities for the backward pass (nn/internal/cuda_attention.h). The default: it is
  // the path verified on a GPU (an H100).
  kUnfused,
  // Fused flash-attention-style kernels: no [T, T] matrix, the backward pass recomputes the
  // probabilities, and runs give the same bits. In f32 (nn/internal/cuda_flash_attention.h),
  // or, when F32MatmulPrecision() is kBf16 and the head size is a multiple of 16, on the bf16
  // tensor cores with q, k, v, dout and the probabilities rounded to bf16 and f32 accumulation
  // (nn/internal/cuda_flash_attention_bf16.h); there the kernels' arrays are bf16, half the
  // bytes: c_attn writes q|k|v so (its bias rounded to bf16 too), the kernels write the output
  // (c_proj's operand) and dq|dk|dv (c_attn's backward operand, whose bias gradient then sums
  // bf16 values) rounded to bf16, and c_proj's backward writes dout so. CUDA devices only (Create
  // refuses it on the cpu); head size n_embd / n_head <= 128. Not the default until its gpu
  // tests (tests/runtime/nn/cuda_flash_attention_test.cc) have passed on a GPU: it was written
  // where none was at hand.
  kFlash,
};

struct AttentionOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;              // REQUIRES: divides n_embd.
  double init_stddev = 0.02;       // c_attn's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  // The TP group; outlives the layer. REQUIRES: its size divides n_head. Default: null, no
  // split (as is a group of one).
  Communicator* tp = nullptr;
  AttentionKernel kernel = AttentionKernel::kUnfused;  // Default: see AttentionKernel.
};

// The keys and values of one attention layer's earlier positions (CausalSelfAttention::
// ForwardCached): under tensor parallelism, of this rank's heads only. Made by CreateCache.
struct AttentionCache {
  // [B, capacity, local C], head h at columns [h*D, (h+1)*D) (local C = D * this rank's heads);
  // rows [0, length) of each sequence hold its positions [0, length).
  Tensor keys;
  Tensor values;  // The same shape and layout.
  int64_t length = 0;
};

class CausalSelfAttention : public Sublayer {
 public:
  // Draws c_attn's weights, then c_proj's, from `init`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CausalSelfAttention>> Create(
      const AttentionOptions& options, ParameterInitializer& init);

  // x [B, T, C] -> y [B, T, C]. Saves q|k|v [B, T, 3C] and the probabilities [B, H, T, T]
  // (kFlash: the attention output [B, T, C] and each row's log-sum-exp [B, H, T] instead). x is
  // in the layer's dtype, or already c_attn's operand (Linear::Forward); y in the layer's.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  // residual + Forward(x) (sublayer.h), the sum made by c_proj's ForwardAdding.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardAdding(const Tensor& x,
                                                     const Tensor& residual) override;
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;

  // An empty cache for `batch` sequences of up to `capacity` positions each, in the layer's
  // dtype, on its device. Errors: batch or capacity < 1 (InvalidArgument); a CUDA layer with
  // heads over nn_internal::kCachedAttentionMaxHeadDim (256) wide (Unimplemented).
  [[nodiscard]] absl::StatusOr<AttentionCache> CreateCache(int64_t batch, int64_t capacity) const;
  // x [B, Tn, C], the next Tn positions of the B sequences whose earlier positions `cache` holds
  // -> y [B, Tn, C]: these positions' rows of Forward over all cache.length + Tn of them (up to
  // the order of the products' sums). Appends their keys and values to `cache`. Keeps nothing
  // for a Backward (and drops what a Forward saved, here and in c_attn and c_proj). Under tensor
  // parallelism a collective over tp, as Forward. Errors: Unimplemented as CreateCache's;
  // InvalidArgument for x or the cache of another shape, dtype or device than the layer's, or
  // cache.length + Tn over the cache's capacity (naming it). After an error cache.length is
  // unchanged (rows past it may have been written).
  [[nodiscard]] absl::StatusOr<Tensor> ForwardCached(const Tensor& x, AttentionCache& cache);

 private:
  explicit CausalSelfAttention(const AttentionOptions& options) : options_(options) {}
  // This rank's heads: all of them, or n_head / tp under tensor parallelism.
  int64_t local_heads() const;
  absl::Status CheckInput(const Tensor& x) const;
  // Forward, plus *residual unless null.
  absl::StatusOr<Tensor> ForwardWith(const Tensor& x, const Tensor* residual);
  // c_proj's forward pass over the heads' output, plus *residual unless null.
  absl::StatusOr<Tensor> Project(const Tensor& out, const Tensor* residual);
  void ClearSaved() override { saved_.reset(); }

  AttentionOptions options_;
  std::unique_ptr<Sublayer> c_attn_;  // Linear, or ColumnParallelLinear under TP.
  std::unique_ptr<Sublayer> c_proj_;  // Linear, or RowParallelLinear under TP.
  struct Saved {
    // cpu and kFlash: c_attn's output [B, T, 3C] (kFlash under bf16 products: in bf16). Unfused
    // CUDA: the same values with each head contiguous, [3, B, H, T, D] (nn/internal/cuda_layers.h).
    Tensor qkv;
    Tensor probs = {};  // [B, H, T, T]; kFlash keeps instead:
    Tensor lse = {};    // [B, H, T], each row's log-sum-exp of scores,
    Tensor out = {};    // and the attention output [B, T, C] (in qkv's dtype).
    nn_internal::AttentionDims dims;
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_ATTENTION_H_
