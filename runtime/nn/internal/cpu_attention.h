// Causal multi-head self-attention on the cpu, over the fused projection qkv [B, T, 3C]
// (q = columns [0, C), k = [C, 2C), v = [2C, 3C); head h uses columns [h*D, (h+1)*D) of each,
// D = C / heads, GPT-2's layout). For each head: scores = q k^T / sqrt(D), position t attends
// to positions <= t, probs = softmax(scores), out = probs v, written to out [B, T, C] at the
// head's columns. T is float or double.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_ATTENTION_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_ATTENTION_H_

#include <cstdint>

namespace usine::nn_internal {

struct AttentionDims {
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// Writes out [B, T, C] and probs [B, heads, T, T] (zero above the diagonal), which the
// backward pass needs.
template <typename T>
void CausalAttentionForward(const T* qkv, const AttentionDims& d, T* out, T* probs);

// The attention of one sequence's head for m positions that follow `past` earlier ones:
// p [m, past + m] <- scale * q k^T with row t's softmax over its first past + t + 1 entries
// (zero after them), then out [m, D] <- p v. q [m, D], k and v [past + m, D], out: rows ldq,
// ldkv and ldout elements apart. CausalAttentionForward's step per head (past 0), and the cached
// decoder's (cpu_cached_attention.h). Runs on the calling thread alone.
template <typename T>
void AttendCausally(const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv, int64_t m,
                    int64_t past, int64_t head_dim, T* p, T* out, int64_t ldout);

// Writes dqkv [B, T, 3C] from dout [B, T, C].
template <typename T>
void CausalAttentionBackward(const T* dout, const T* qkv, const T* probs, const AttentionDims& d,
                             T* dqkv);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_ATTENTION_H_
