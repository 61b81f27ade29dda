// Causal self-attention (cpu_attention.h's definition) on a CUDA device as fused,
// flash-attention-style kernels, in f32: no [T, T] matrix is ever stored. The forward pass
// walks, for each tile of 64 queries of one head, the tiles of 64 keys up to the diagonal with
// an online softmax (running maximum and sum) and keeps the log-sum-exp of each row; the
// backward pass recomputes the probabilities from q, k and that log-sum-exp, and computes dq in
// one kernel over query tiles and dk, dv in another over key tiles, so that every output element
// is summed by one thread in a fixed order: no atomics, and the same input gives the same bits
// on every run. Products are f32 FMAs from shared memory (no tensor cores, whatever
// F32MatmulPrecision says); cuda_flash_attention_bf16.h has the same kernels on the bf16 tensor
// cores, which the layers run instead under a bf16 precision (cuda_layers.h). Launch contract:
// cuda_gelu.h.
//
// Layout (GPT-2's, as c_attn writes it): qkv [B, T, 3C] with q, k, v at columns [0, C),
// [C, 2C), [2C, 3C) and head h at columns [h D, (h+1) D) of each, C = H D; out and dout
// [B, T, C]; lse and the backward scratch [B, H, T].
//
//   LaunchFlashAttentionForward(qkv, shape, out, lse, stream);
//   LaunchFlashAttentionBackward(qkv, out, dout, lse, shape, dqkv, scratch, stream);
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::nn_internal::cuda {

// The largest head size the kernels take.
inline constexpr int64_t kFlashMaxHeadDim = 128;

struct FlashShape {
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;  // REQUIRES: 1 <= head_dim <= kFlashMaxHeadDim.
};

// Writes out [B, T, C] (softmax(q k^T / sqrt(D), causal) v per head) and lse [B, H, T], the
// natural log of each row's sum of exp(scores). Returns cudaErrorInvalidValue for a head size
// out of range or B H times the tiles of 64 beyond 2^31 - 1; a device that cannot give a block the
// shared memory the kernel needs (66 KB at D <= 64, 114 KB at D <= 128) fails the launch.
cudaError_t LaunchFlashAttentionForward(const float* qkv, const FlashShape& shape, float* out,
                                        float* lse, cudaStream_t stream);

// Floats of scratch LaunchFlashAttentionBackward needs: B H T.
int64_t FlashAttentionBackwardScratch(const FlashShape& shape);

// Writes every element of dqkv [B, T, 3C] (dq | dk | dv) from dout [B, T, C] and what the
// forward pass took and gave (qkv, out, lse). Shared memory: 98 KB per block at D <= 64, 162 KB
// at D <= 128 (within the opt-in limits of an A100, 163 KB, and an H100, 227 KB). REQUIRES:
// `scratch` holds FlashAttentionBackwardScratch(shape) floats unused by other work until this
// finishes (stream order). Errors as the forward's.
cudaError_t LaunchFlashAttentionBackward(const float* qkv, const float* out, const float* dout,
                                         const float* lse, const FlashShape& shape, float* dqkv,
                                         float* scratch, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_H_
