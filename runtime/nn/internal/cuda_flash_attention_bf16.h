// The flash attention of cuda_flash_attention.h (same arrays, layout and results up to
// rounding) on the bf16 tensor cores: q, k, v and dout are rounded to bf16 (to nearest, ties to
// even) as they are loaded into shared memory, the products q k^T, p v, dout v^T, ds k, p^T dout
// and ds^T q run as mma.sync m16n8k16 bf16 products with f32 accumulators in registers (p and ds
// are rounded to bf16 as operands too), and the softmax statistics, lse, the output and every
// gradient are accumulated in f32. As with the f32 kernels, every output element is summed by
// one thread in a fixed order, with no atomics: the same input gives the same bits on every run.
// The layers take this path when F32MatmulPrecision() is kBf16 and Bf16FlashAttentionTakes
// (cuda_layers.h). Each launcher also takes its arrays but lse in bf16 (as the attention layer
// keeps them under bf16 products: c_attn writes qkv so, the forward pass writes out for c_proj's
// product, c_proj's backward writes dout, and dqkv is c_attn's backward operand): the bits of the
// f32 launch on f32 arrays holding the same values, each f32 result rounded to bf16 (to nearest,
// ties to even) as it is stored, with half the bytes to move. Launch contract: cuda_gelu.h.
//
// Work split: one block of 4 warps per head and tile of 64 rows; each warp owns 16 rows of the
// tile (queries in the forward and dq kernels, keys in the dk, dv kernel) and walks the other
// side's tiles of 64, all warps sharing the tiles in shared memory, where (for bf16 arrays) the
// next tile is copied while the current one is used.
//
//   const cudaError_t err = Bf16FlashAttentionTakes(shape, qkv, nullptr, out)
//       ? LaunchBf16FlashAttentionForward(qkv, shape, out, lse, stream)
//       : LaunchFlashAttentionForward(qkv, shape, out, lse, stream);
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_BF16_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_BF16_H_

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"
#include "runtime/nn/internal/cuda_flash_attention.h"

namespace usine::nn_internal::cuda {

// Whether the bf16 kernels take this shape and these arrays: a head size that is a multiple of
// 16 up to kFlashMaxHeadDim (other sizes go to the f32 kernels), qkv and dout (null in the
// forward pass) 16-byte aligned, since the kernels read them 16 bytes at a time, and `result`
// (out in the forward pass, dqkv in the backward) aligned to 2 of its elements, since they store
// pairs.
bool Bf16FlashAttentionTakes(const FlashShape& shape, const float* qkv, const float* dout,
                             const float* result);
bool Bf16FlashAttentionTakes(const FlashShape& shape, const BFloat16* qkv, const BFloat16* dout,
                             const BFloat16* result);

// LaunchFlashAttentionForward's results. Shared memory per block: 25 KB at D <= 32, 45 KB at
// D <= 64, 85 KB at D <= 128 (beyond 48 KB an opt-in, which the launcher makes). Returns
// cudaErrorInvalidValue unless Bf16FlashAttentionTakes(shape, qkv, nullptr, out), or for a shape
// the f32 launchers refuse (B H times the tiles of 64 beyond 2^31 - 1); a device
// whose per-block opt-in limit is below the shared memory needed (GeForce-class GPUs allow 99 KB)
// fails the launch.
cudaError_t LaunchBf16FlashAttentionForward(const float* qkv, const FlashShape& shape, float* out,
                                            float* lse, cudaStream_t stream);
cudaError_t LaunchBf16FlashAttentionForward(const BFloat16* qkv, const FlashShape& shape,
                                            BFloat16* out, float* lse, cudaStream_t stream);

// LaunchFlashAttentionBackward's results, from what either forward pass gave (the probabilities
// are recomputed here in bf16 and normalised by `lse`: after a forward pass in f32 they are off
// by the two paths' rounding difference, within bf16's rounding). Two kernels: dq over query
// tiles (which also writes each row's delta, the sum of out times dout in bf16, into `scratch`),
// then dk and dv over key tiles. Shared memory per block: 30.5 and 31 KB at D <= 32, 54.5 and 55 KB
// at D <= 64, 102.5 and 103 KB at D <= 128 (within the opt-in limits of an A100, 163 KB, and an
// H100, 227 KB). REQUIRES: `scratch` holds FlashAttentionBackwardScratch(shape) floats unused by
// other work until this finishes (stream order). Errors as the forward's, checked with
// Bf16FlashAttentionTakes(shape, qkv, dout, dqkv).
cudaError_t LaunchBf16FlashAttentionBackward(const float* qkv, const float* out, const float* dout,
                                             const float* lse, const FlashShape& shape, float* dqkv,
                                             float* scratch, cudaStream_t stream);
cudaError_t LaunchBf16FlashAttentionBackward(const BFloat16* qkv, const BFloat16* out,
                                             const BFloat16* dout, const float* lse,
                                             const FlashShape& shape, BFloat16* dqkv,
                                             float* scratch, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_FLASH_ATTENTION_BF16_H_
