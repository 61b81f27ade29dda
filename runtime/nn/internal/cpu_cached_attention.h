// Causal multi-head self-attention of new positions against a key/value cache, on the cpu: the
// decoding step of CausalSelfAttention::ForwardCached (attention.h). The new positions' fused
// projection qkv [B, Tn, 3C] (cpu_attention.h's layout) gives its keys and values to the caches
// keys and values [B, capacity, C] at rows [past, past + Tn); then new position t, at absolute
// position past + t, attends to rows [0, past + t] of the cache: per head, scores = q k^T /
// sqrt(D), softmax, out = probs v, written to out [B, Tn, C] at the head's columns. Each head is
// CausalAttentionForward's step (AttendCausally, cpu_attention.h), so out is those positions'
// rows of a full forward pass over all past + Tn positions, up to the order of the products'
// sums. T is float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_CACHED_ATTENTION_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_CACHED_ATTENTION_H_

#include <cstdint>

namespace usine::nn_internal {

struct CachedAttentionDims {
  int64_t batch = 0;
  int64_t fresh = 0;     // Tn, the new positions of each sequence.
  int64_t past = 0;      // Positions the cache holds before this call.
  int64_t capacity = 0;  // Rows of the cache per sequence. REQUIRES: past + fresh <= capacity.
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// Writes keys and values at rows [past, past + fresh), and out [B, Tn, C].
template <typename T>
void CachedAttentionForward(const T* qkv, const CachedAttentionDims& d, T* keys, T* values, T* out);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_CACHED_ATTENTION_H_
