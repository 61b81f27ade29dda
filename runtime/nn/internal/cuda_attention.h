// The pieces of causal self-attention (cpu_attention.h's definition) on a CUDA device that are
// not matrix products (those go through the kernels library's Matmul, cuBLASLt): moving the
// heads of the fused projection to contiguous [B, H, T, D] blocks and back, and the causal
// softmax and its gradient, one warp per row of scores. f32. Launch contract: cuda_gelu.h.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_ATTENTION_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_ATTENTION_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::nn_internal::cuda {

struct HeadLayout {
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t parts = 0;  // 3 for q|k|v, 1 for one [B, T, C] tensor.
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// heads[p, b, h, t, :] = rows[b, t, p, h, :], for rows [B, T, parts * H * D] (GPT-2's fused
// layout) and heads [parts, B, H, T, D].
cudaError_t LaunchSplitHeads(const float* rows, const HeadLayout& l, float* heads,
                             cudaStream_t stream);
// The inverse: rows[b, t, p, h, :] = heads[p, b, h, t, :].
cudaError_t LaunchMergeHeads(const float* heads, const HeadLayout& l, float* rows,
                             cudaStream_t stream);

// In place over `count` matrices [seq, seq] of scaled scores: row t becomes softmax over
// columns [0, t], and 0 in columns > t.
cudaError_t LaunchCausalSoftmaxForward(float* scores, int64_t count, int64_t seq,
                                       cudaStream_t stream);

// In place over `count` matrices [seq, seq]: dprobs (dL/dprobs; above the diagonal ignored)
// becomes scale * dL/dscores = scale * probs * (dprobs - sum_s probs * dprobs), 0 above the
// diagonal.
cudaError_t LaunchCausalSoftmaxBackward(const float* probs, int64_t count, int64_t seq, float scale,
                                        float* dprobs, cudaStream_t stream);

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_ATTENTION_H_
