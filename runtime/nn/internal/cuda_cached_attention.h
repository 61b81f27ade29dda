// Causal attention of new positions against a key/value cache on a CUDA device: the decoding
// step of CausalSelfAttention::ForwardCached, as cpu_cached_attention.h defines it (the same
// dims and layouts). One warp per new position and head runs an online softmax over the cached
// keys in position order, so the result is deterministic and equals the cpu's up to the order
// of its sums. Launch contract: cuda_gelu.h.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_CACHED_ATTENTION_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_CACHED_ATTENTION_H_

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"
#include "runtime/nn/internal/cpu_cached_attention.h"

namespace usine::nn_internal::cuda {

// The largest head size the kernel takes (each lane holds head_dim / 32 of a row).
inline constexpr int64_t kCachedAttentionMaxHeadDim = 256;

// Writes rows [past, past + fresh) of keys and values [B, capacity, C] from qkv [B, Tn, 3C]
// (f32, or bf16: c_attn's output under bf16 products), then out [B, Tn, C]. Caches and out are
// f32. REQUIRES: d.head_dim <= kCachedAttentionMaxHeadDim; d.past + d.fresh <= d.capacity.
template <typename TQkv>
cudaError_t LaunchCachedAttentionForward(const TQkv* qkv, const CachedAttentionDims& d, float* keys,
                                         float* values, float* out, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_CACHED_ATTENTION_H_
