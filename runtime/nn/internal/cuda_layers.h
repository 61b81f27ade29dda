// The layers' CUDA path at the level of Tensors: each function checks nothing beyond what the
// layer already checked (f32, shapes, one CUDA device), makes the tensors' device current,
// allocates its scratch, and enqueues the kernels of cuda_*.h (and the kernels library's
// Matmul) on the device's default stream (LayerStream, real_types.h), returning without
// waiting unless it says otherwise. The counterpart of the cpu_*.h functions; this header
// needs no CUDA toolkit, and in a build without CUDA every function returns FailedPrecondition
// (cuda_layers_unavailable.cc), which CheckLayerPlacement keeps the layers from reaching.
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_LAYERS_H_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_LAYERS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/tensor.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/internal/cpu_cached_attention.h"
#include "runtime/nn/internal/cpu_vocab_parallel.h"

namespace usine::nn_internal {

// y = gelu(x); dx = dy * gelu'(x). Same shapes; x f32 (forward) or f32 or bf16 (backward), dy
// f32 or (with a bf16 dx) bf16, y and dx f32 or bf16.
[[nodiscard]] absl::Status CudaGeluForward(const Tensor& x, const Tensor& y);
[[nodiscard]] absl::Status CudaGeluBackward(const Tensor& x, const Tensor& dy, const Tensor& dx);
// CudaGeluBackward over x [rows * cols], also adding the column sums of the f32 gradient into
// sums [cols] from the same pass (CudaAccumulateColumnSums's order).
[[nodiscard]] absl::Status CudaGeluBackwardAndColumnSums(const Tensor& x, const Tensor& dy,
                                                         int64_t cols, const Tensor& dx,
                                                         const Tensor& sums);

// x, y [rows * cols] (y f32 or bf16); mean, rstd [rows]; weight, bias [cols].
[[nodiscard]] absl::Status CudaLayerNormForward(const Tensor& x, const Tensor& weight,
                                                const Tensor& bias, int64_t cols, double eps,
                                                const Tensor& y, const Tensor& mean,
                                                const Tensor& rstd);
// Writes dx, plus `skip` unless it is undefined (dx may be skip); adds into dweight and dbias.
[[nodiscard]] absl::Status CudaLayerNormBackward(const Tensor& dy, const Tensor& x,
                                                 const Tensor& weight, const Tensor& mean,
                                                 const Tensor& rstd, int64_t cols,
                                                 const Tensor& skip, const Tensor& dx,
                                                 const Tensor& dweight, const Tensor& dbias);

// sums[c] += sum over rows of x[r, c], for x (f32 or bf16) of rows * cols elements and sums
// [cols] (f32).
[[nodiscard]] absl::Status CudaAccumulateColumnSums(const Tensor& x, int64_t cols,
                                                    const Tensor& sums);
// CudaAccumulateColumnSums (the same bits), returning x rounded to bf16 (a new tensor of x's
// shape: ProductOperand(x)'s bits under bf16 products) from the same pass over x.
[[nodiscard]] absl::StatusOr<Tensor> CudaRoundAndAccumulateColumnSums(const Tensor& x, int64_t cols,
                                                                      const Tensor& sums);

// `ids` (host) as an i32 tensor on `device`, uploaded on the default stream (Upload,
// runtime/kernels/upload.h: the host does not wait, and may free `ids` at once).
[[nodiscard]] absl::StatusOr<Tensor> CudaUploadIds(const std::vector<int32_t>& ids, Device device);

// out [n, dim] = table[ids]; ids: i32 [n] on the table's device. An id < 0 gives a row of 0
// (and no gradient below): the ids of the rows another rank of a vocabulary-parallel table
// holds (SliceRows, cpu_vocab_parallel.h).
[[nodiscard]] absl::Status CudaEmbeddingForward(const Tensor& ids, const Tensor& table,
                                                const Tensor& out);
// dtable[ids[i]] += dout[i] for ids >= 0, each row in increasing i (the cpu's order). ids on
// the host.
[[nodiscard]] absl::Status CudaEmbeddingBackward(const std::vector<int32_t>& ids,
                                                 const Tensor& dout, const Tensor& dtable);
// x [B, T, dim] += table[0:T].
[[nodiscard]] absl::Status CudaAddPositions(const Tensor& table, const Tensor& x);

// Writes lse [rows] and returns the sum over rows of the losses, in double on the host
// (synchronous). logits [rows, padded_vocab]; targets i32 [rows] on the device.
[[nodiscard]] absl::StatusOr<double> CudaCrossEntropyForward(const Tensor& logits,
                                                             const Tensor& targets, int64_t vocab,
                                                             const Tensor& lse);
// In place over the logits, as CrossEntropyBackward.
[[nodiscard]] absl::Status CudaCrossEntropyBackward(const Tensor& targets, const Tensor& lse,
                                                    int64_t vocab, double scale,
                                                    const Tensor& logits);
// CudaCrossEntropyForward's sum, with CrossEntropyBackward's gradient written to `gradient`
// (the logits' shape; f32, possibly the logits themselves, or bf16) by the same kernel.
[[nodiscard]] absl::StatusOr<double> CudaCrossEntropyForwardWithGradient(const Tensor& logits,
                                                                         const Tensor& targets,
                                                                         int64_t vocab,
                                                                         double scale,
                                                                         const Tensor& gradient);

// The vocabulary-parallel cross-entropy's steps (cpu_vocab_parallel.h's) over this rank's
// logits [rows, s.count]; targets i32 [rows] on the device (class ids of the whole vocabulary).
// max [rows] <- each row's max over the slice's classes.
[[nodiscard]] absl::Status CudaSliceRowMax(const Tensor& logits, const VocabSlice& s,
                                           const Tensor& max);
// sums [2 * rows] <- each row's sum of e^(logit - max[r]), then the target's logit or 0.
[[nodiscard]] absl::Status CudaSliceSumExpAndTarget(const Tensor& logits, const Tensor& targets,
                                                    const VocabSlice& s, const Tensor& max,
                                                    const Tensor& sums);
// gradient (the logits' shape; f32, possibly the logits themselves, or bf16) <- scale *
// (softmax - onehot(target)) from each row's log-sum-exp lse [rows], 0 on the padding.
[[nodiscard]] absl::Status CudaSliceCrossEntropyGradient(const Tensor& logits,
                                                         const Tensor& targets, const Tensor& lse,
                                                         const VocabSlice& s, double scale,
                                                         const Tensor& gradient);

// Causal attention over qkv [B, T, 3C]: writes out [B, T, C]; heads [3, B, H, T, D] (q, k, v
// with each head contiguous) and probs [B, H, T, T] (0 above the diagonal) are what the
// backward pass needs.
[[nodiscard]] absl::Status CudaCausalAttentionForward(const Tensor& qkv, const AttentionDims& d,
                                                      const Tensor& out, const Tensor& heads,
                                                      const Tensor& probs);
// dqkv [B, T, 3C] from dout [B, T, C] and what the forward pass kept.
[[nodiscard]] absl::Status CudaCausalAttentionBackward(const Tensor& dout, const Tensor& heads,
                                                       const Tensor& probs, const AttentionDims& d,
                                                       const Tensor& dqkv);

// The decoding step over a key/value cache (cpu_cached_attention.h's CachedAttentionForward):
// writes rows [d.past, d.past + d.fresh) of keys and values [B, capacity, C] from qkv [B, Tn,
// 3C] (f32 or bf16), then out [B, Tn, C]; caches and out f32, all on one CUDA device.
// InvalidArgument for impossible dims (a count under 1, past < 0, past + fresh over the
// capacity), a head size over kCachedAttentionMaxHeadDim, or arrays other than `d` says.
[[nodiscard]] absl::Status CudaCachedAttentionForward(const Tensor& qkv,
                                                      const CachedAttentionDims& d,
                                                      const Tensor& keys, const Tensor& values,
                                                      const Tensor& out);
// The largest head size of CudaCachedAttentionForward (cuda_cached_attention.h's, here for code
// built without the CUDA toolkit).
inline constexpr int64_t kCachedAttentionMaxHeadDim = 256;

// The largest head size of the flash attention kernels (cuda_flash_attention.h's
// kFlashMaxHeadDim, here for code built without the CUDA toolkit).
inline constexpr int64_t kFlashAttentionMaxHeadDim = 128;

// The fused flash attention kernels over qkv [B, T, 3C]: writes out [B, T, C] and lse [B, H, T]
// (each row's log-sum-exp of scores), which the backward pass needs with qkv and out; no [T, T]
// matrix. lse is f32; qkv, out, dout and dqkv are all f32, or all bf16 (as the layer keeps them
// under bf16 products: each f32 result rounded to bf16 as it is stored); InvalidArgument for
// other dtypes. For bf16 arrays, and for f32 ones when F32MatmulPrecision() is kBf16 and the head
// size is a multiple of 16 (with qkv and dout 16-byte aligned, as allocations are), the
// bf16 tensor-core kernels of cuda_flash_attention_bf16.h, else the f32 kernels of
// cuda_flash_attention.h (InvalidArgument for bf16 arrays they cannot take); the precision is
// read at each call, so a forward and its backward should run under the same one.
// REQUIRES: d.head_dim <= kFlashAttentionMaxHeadDim.
[[nodiscard]] absl::Status CudaFlashAttentionForward(const Tensor& qkv, const AttentionDims& d,
                                                     const Tensor& out, const Tensor& lse);
// dqkv [B, T, 3C] from dout [B, T, C] and the forward pass's qkv, out and lse; deterministic.
[[nodiscard]] absl::Status CudaFlashAttentionBackward(const Tensor& dout, const Tensor& qkv,
                                                      const Tensor& out, const Tensor& lse,
                                                      const AttentionDims& d, const Tensor& dqkv);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_LAYERS_H_
