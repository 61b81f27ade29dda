// The Tensor-level CUDA path of the layers (cuda_layers.h): unpacks tensors into raw pointers
// for the launchers of cuda_*.h, all on the device's default stream (nullptr), in the manner
// of kernels/cuda/backend.cc. Scratch tensors are freed as soon as their kernels are enqueued:
// the caching allocator hands a block out again only for work on the same stream, which runs
// after them.
#include "runtime/nn/internal/cuda_layers.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/upload.h"
#include "runtime/nn/internal/cuda_attention.h"
#include "runtime/nn/internal/cuda_cached_attention.h"
#include "runtime/nn/internal/cuda_cross_entropy.h"
#include "runtime/nn/internal/cuda_elementwise.h"
#include "runtime/nn/internal/cuda_embedding.h"
#include "runtime/nn/internal/cuda_flash_attention.h"
#include "runtime/nn/internal/cuda_flash_attention_bf16.h"
#include "runtime/nn/internal/cuda_gelu.h"
#include "runtime/nn/internal/cuda_layer_norm.h"
#include "runtime/nn/internal/real_types.h"

namespace usine::nn_internal {
namespace {

constexpr cudaStream_t kDefaultStream = nullptr;  // LayerStream(device).handle().

float* F32(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

// `launch` called with `out`'s data as the launcher's output type: BFloat16* for a bf16 tensor,
// float* otherwise.
template <typename Launch>
cudaError_t WithOutput(const Tensor& out, const Launch& launch) {
  return out.dtype() == DType::kBF16 ? launch(static_cast<BFloat16*>(out.raw_data()))
                                     : launch(F32(out));
}
// `launch` called with `in`'s data as the launcher's input type: const BFloat16* for a bf16
// tensor, const float* otherwise.
template <typename Launch>
cudaError_t WithInput(const Tensor& in, const Launch& launch) {
  return in.dtype() == DType::kBF16 ? launch(static_cast<const BFloat16*>(in.raw_data()))
                                    : launch(static_cast<const float*>(in.raw_data()));
}
const int32_t* I32(const Tensor& t) { return static_cast<const int32_t*>(t.raw_data()); }

// The pairs that the kernels reading an f32 or bf16 input and writing an f32 or bf16 output
// take (the cross-entropy's logits and gradient, the GELU's dy and dx): a bf16 input only with
// a bf16 output. InvalidArgument naming `what` otherwise.
absl::Status CheckInputAndOutput(const Tensor& in, const Tensor& out, absl::string_view what) {
  if (in.dtype() != DType::kBF16 || out.dtype() == DType::kBF16) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": a bf16 input ", in.DebugString(),
                                                 " needs a bf16 output, got ", out.DebugString()));
}

// `launch` called with `in`'s data as WithInput passes it and `out`'s as WithOutput does, for
// the pairs that CheckInputAndOutput allows.
template <typename Launch>
cudaError_t WithInputAndOutput(const Tensor& in, const Tensor& out, const Launch& launch) {
  return WithInput(in, [&](const auto* input) {
    return WithOutput(out, [&](auto* output) {
      using In = std::remove_cv_t<std::remove_pointer_t<decltype(input)>>;
      using Out = std::remove_pointer_t<decltype(output)>;
      if constexpr (std::is_same_v<In, BFloat16> && std::is_same_v<Out, float>) {
        return cudaErrorInvalidValue;  // Refused by CheckInputAndOutput.
      } else {
        return launch(input, output);
      }
    });
  });
}

// Makes `t`'s device current for the rest of the enclosing scope.
#define USINE_ENTER_DEVICE_OF(t)               \
  core_internal::CudaDeviceGuard usine_guard_; \
  RETURN_IF_ERROR(usine_guard_.Enter((t).device()))

absl::StatusOr<Tensor> Scratch(int64_t floats, Device device) {
  return Tensor::Empty({std::max<int64_t>(floats, 1)}, DType::kF32, device);
}

}  // namespace

absl::Status CudaGeluForward(const Tensor& x, const Tensor& y) {
  USINE_ENTER_DEVICE_OF(x);
  return USINE_CUDA_STATUS(WithOutput(y, [&](auto* out) {
    return cuda::LaunchGeluForward(F32(x), x.numel(), out, kDefaultStream);
  }));
}

absl::Status CudaGeluBackward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  USINE_ENTER_DEVICE_OF(x);
  RETURN_IF_ERROR(CheckInputAndOutput(dy, dx, "GELU backward"));
  return USINE_CUDA_STATUS(WithInput(x, [&](const auto* in) {
    return WithInputAndOutput(dy, dx, [&](const auto* gradient, auto* out) {
      return cuda::LaunchGeluBackward(in, gradient, x.numel(), out, kDefaultStream);
    });
  }));
}

absl::Status CudaGeluBackwardAndColumnSums(const Tensor& x, const Tensor& dy, int64_t cols,
                                           const Tensor& dx, const Tensor& sums) {
  USINE_ENTER_DEVICE_OF(x);
  const int64_t rows = x.numel() / cols;
  RETURN_IF_ERROR(CheckInputAndOutput(dy, dx, "GELU backward"));
  ASSIGN_OR_RETURN(Tensor scratch, Scratch(cuda::ColumnSumsScratch(rows, cols), x.device()));
  return USINE_CUDA_STATUS(WithInput(x, [&](const auto* in) {
    return WithInputAndOutput(dy, dx, [&](const auto* gradient, auto* out) {
      return cuda::LaunchGeluBackwardAndColumnSums(in, gradient, rows, cols, out, F32(sums),
                                                   F32(scratch), kDefaultStream);
    });
  }));
}

absl::Status CudaLayerNormForward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  int64_t cols, double eps, const Tensor& y, const Tensor& mean,
                                  const Tensor& rstd) {
  USINE_ENTER_DEVICE_OF(x);
  return USINE_CUDA_STATUS(WithOutput(y, [&](auto* out) {
    return cuda::LaunchLayerNormForward(F32(x), F32(weight), F32(bias), x.numel() / cols, cols,
                                        static_cast<float>(eps), out, F32(mean), F32(rstd),
                                        kDefaultStream);
  }));
}

absl::Status CudaLayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& rstd, int64_t cols,
                                   const Tensor& skip, const Tensor& dx, const Tensor& dweight,
                                   const Tensor& dbias) {
  USINE_ENTER_DEVICE_OF(x);
  const int64_t rows = x.numel() / cols;
  ASSIGN_OR_RETURN(Tensor scratch, Scratch(cuda::LayerNormBackwardScratch(rows, cols), x.device()));
  return USINE_CUDA_STATUS(cuda::LaunchLayerNormBackward(
      F32(dy), F32(x), F32(weight), F32(mean), F32(rstd), skip.defined() ? F32(skip) : nullptr,
      rows, cols, F32(dx), F32(dweight), F32(dbias), F32(scratch), kDefaultStream));
}

absl::Status CudaAccumulateColumnSums(const Tensor& x, int64_t cols, const Tensor& sums) {
  USINE_ENTER_DEVICE_OF(x);
  const int64_t rows = x.numel() / cols;
  ASSIGN_OR_RETURN(Tensor scratch, Scratch(cuda::ColumnSumsScratch(rows, cols), x.device()));
  return USINE_CUDA_STATUS(WithInput(x, [&](const auto* in) {
    return cuda::LaunchAccumulateColumnSums(in, rows, cols, F32(sums), F32(scratch),
                                            kDefaultStream);
  }));
}

absl::StatusOr<Tensor> CudaRoundAndAccumulateColumnSums(const Tensor& x, int64_t cols,
                                                        const Tensor& sums) {
  USINE_ENTER_DEVICE_OF(x);
  const int64_t rows = x.numel() / cols;
  ASSIGN_OR_RETURN(Tensor rounded, Tensor::Empty(x.shape(), DType::kBF16, x.device()));
  ASSIGN_OR_RETURN(Tensor scratch, Scratch(cuda::ColumnSumsScratch(rows, cols), x.device()));
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cuda::LaunchRoundAndAccumulateColumnSums(
      F32(x), rows, cols, static_cast<BFloat16*>(rounded.raw_data()), F32(sums), F32(scratch),
      kDefaultStream)));
  return rounded;
}

absl::StatusOr<Tensor> CudaUploadIds(const std::vector<int32_t>& ids, Device device) {
  const int64_t n = static_cast<int64_t>(ids.size());
  ASSIGN_OR_RETURN(Tensor host,
                   Tensor::Wrap(const_cast<int32_t*>(ids.data()), {n}, DType::kI32, Device::Cpu()));
  ASSIGN_OR_RETURN(Tensor on_device, Tensor::Empty({n}, DType::kI32, device));
  RETURN_IF_ERROR(Upload(host, on_device, LayerStream(device)));
  return on_device;
}

absl::Status CudaEmbeddingForward(const Tensor& ids, const Tensor& table, const Tensor& out) {
  USINE_ENTER_DEVICE_OF(table);
  const int64_t dim = table.dim(1);
  return USINE_CUDA_STATUS(cuda::LaunchEmbeddingForward(I32(ids), ids.numel(), F32(table), dim,
                                                        F32(out), kDefaultStream));
}

absl::Status CudaEmbeddingBackward(const std::vector<int32_t>& ids, const Tensor& dout,
                                   const Tensor& dtable) {
  USINE_ENTER_DEVICE_OF(dtable);
  // Group the positions of ids >= 0 by id (a stable sort keeps each id's positions
  // increasing).
  std::vector<int32_t> positions;
  positions.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= 0) positions.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(positions.begin(), positions.end(),
                   [&](int32_t a, int32_t b) { return ids[a] < ids[b]; });
  std::vector<int32_t> group_ids, group_begin;
  for (size_t k = 0; k < positions.size(); ++k) {
    if (k == 0 || ids[positions[k]] != ids[positions[k - 1]]) {
      group_ids.push_back(ids[positions[k]]);
      group_begin.push_back(static_cast<int32_t>(k));
    }
  }
  if (positions.empty()) return absl::OkStatus();  // No id of this table's.
  group_begin.push_back(static_cast<int32_t>(positions.size()));
  // One upload of [positions | group_ids | group_begin].
  const int64_t n_positions = static_cast<int64_t>(positions.size());
  const int64_t n_groups = static_cast<int64_t>(group_ids.size());
  std::vector<int32_t> packed = std::move(positions);
  packed.insert(packed.end(), group_ids.begin(), group_ids.end());
  packed.insert(packed.end(), group_begin.begin(), group_begin.end());
  ASSIGN_OR_RETURN(const Tensor uploaded, CudaUploadIds(packed, dtable.device()));
  ASSIGN_OR_RETURN(const Tensor d_positions, uploaded.View(0, {n_positions}));
  ASSIGN_OR_RETURN(const Tensor d_group_ids, uploaded.View(n_positions, {n_groups}));
  ASSIGN_OR_RETURN(const Tensor d_group_begin,
                   uploaded.View(n_positions + n_groups, {n_groups + 1}));
  return USINE_CUDA_STATUS(
      cuda::LaunchEmbeddingBackward(I32(d_group_ids), I32(d_group_begin), I32(d_positions),
                                    static_cast<int64_t>(group_ids.size()), F32(dout),
                                    dtable.dim(1), F32(dtable), kDefaultStream));
}

absl::Status CudaAddPositions(const Tensor& table, const Tensor& x) {
  USINE_ENTER_DEVICE_OF(x);
  return USINE_CUDA_STATUS(
      cuda::LaunchAddPositions(F32(table), x.dim(0), x.dim(1), x.dim(2), F32(x), kDefaultStream));
}

namespace {

// The sum of the device's per-row `losses`, in row order and in double, as the cpu's; waits for
// the kernels that wrote them.
absl::StatusOr<double> SumOfLosses(const Tensor& losses) {
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(losses.shape(), DType::kF32));
  RETURN_IF_ERROR(Copy(losses, host));  // Synchronous.
  const float* l = F32(host);
  double total = 0;
  for (int64_t r = 0; r < host.numel(); ++r) total += l[r];
  return total;
}

}  // namespace

absl::StatusOr<double> CudaCrossEntropyForward(const Tensor& logits, const Tensor& targets,
                                               int64_t vocab, const Tensor& lse) {
  USINE_ENTER_DEVICE_OF(logits);
  const int64_t rows = logits.dim(0);
  ASSIGN_OR_RETURN(Tensor losses, Tensor::Empty({rows}, DType::kF32, logits.device()));
  RETURN_IF_ERROR(USINE_CUDA_STATUS(WithInput(logits, [&](const auto* in) {
    return cuda::LaunchCrossEntropyForward(in, I32(targets), rows, vocab, logits.dim(1), F32(lse),
                                           F32(losses), kDefaultStream);
  })));
  return SumOfLosses(losses);
}

absl::StatusOr<double> CudaCrossEntropyForwardWithGradient(const Tensor& logits,
                                                           const Tensor& targets, int64_t vocab,
                                                           double scale, const Tensor& gradient) {
  USINE_ENTER_DEVICE_OF(logits);
  const int64_t rows = logits.dim(0);
  ASSIGN_OR_RETURN(Tensor losses, Tensor::Empty({rows}, DType::kF32, logits.device()));
  RETURN_IF_ERROR(CheckInputAndOutput(logits, gradient, "cross-entropy"));
  const float s = static_cast<float>(scale);
  RETURN_IF_ERROR(
      USINE_CUDA_STATUS(WithInputAndOutput(logits, gradient, [&](const auto* in, auto* out) {
        return cuda::LaunchCrossEntropyForwardWithGradient(
            in, I32(targets), rows, vocab, logits.dim(1), s, F32(losses), out, kDefaultStream);
      })));
  return SumOfLosses(losses);
}

absl::Status CudaCrossEntropyBackward(const Tensor& targets, const Tensor& lse, int64_t vocab,
                                      double scale, const Tensor& logits) {
  USINE_ENTER_DEVICE_OF(logits);
  return USINE_CUDA_STATUS(WithOutput(logits, [&](auto* in_place) {
    return cuda::LaunchCrossEntropyBackward(I32(targets), F32(lse), logits.dim(0), vocab,
                                            logits.dim(1), static_cast<float>(scale), in_place,
                                            kDefaultStream);
  }));
}

absl::Status CudaSliceRowMax(const Tensor& logits, const VocabSlice& s, const Tensor& max) {
  USINE_ENTER_DEVICE_OF(logits);
  return USINE_CUDA_STATUS(WithInput(logits, [&](const auto* in) {
    return cuda::LaunchSliceRowMax(in, logits.dim(0), s.count, s.valid, F32(max), kDefaultStream);
  }));
}

absl::Status CudaSliceSumExpAndTarget(const Tensor& logits, const Tensor& targets,
                                      const VocabSlice& s, const Tensor& max, const Tensor& sums) {
  USINE_ENTER_DEVICE_OF(logits);
  return USINE_CUDA_STATUS(WithInput(logits, [&](const auto* in) {
    return cuda::LaunchSliceSumExpAndTarget(in, I32(targets), logits.dim(0), s.begin, s.count,
                                            s.valid, F32(max), F32(sums), kDefaultStream);
  }));
}

absl::Status CudaSliceCrossEntropyGradient(const Tensor& logits, const Tensor& targets,
                                           const Tensor& lse, const VocabSlice& s, double scale,
                                           const Tensor& gradient) {
  USINE_ENTER_DEVICE_OF(logits);
  RETURN_IF_ERROR(CheckInputAndOutput(logits, gradient, "cross-entropy"));
  return USINE_CUDA_STATUS(WithInputAndOutput(logits, gradient, [&](const auto* in, auto* out) {
    return cuda::LaunchSliceCrossEntropyGradient(in, I32(targets), F32(lse), logits.dim(0), s.begin,
                                                 s.count, s.valid, static_cast<float>(scale), out,
                                                 kDefaultStream);
  }));
}

namespace {

// Part `part` of a [parts, B, H, T, cols] buffer as B * H matrices of [T, cols] ([T, T] for
// the probabilities, one part), for BatchedMatmul: one product per head, in one call.
absl::StatusOr<Tensor> Heads(const Tensor& buffer, int64_t part, const AttentionDims& d,
                             int64_t cols) {
  const int64_t count = d.batch * d.heads;
  return buffer.View(part * count * d.seq * cols, {count, d.seq, cols});
}

float AttentionScale(const AttentionDims& d) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
}

}  // namespace

absl::Status CudaCausalAttentionForward(const Tensor& qkv, const AttentionDims& d,
                                        const Tensor& out, const Tensor& heads,
                                        const Tensor& probs) {
  USINE_ENTER_DEVICE_OF(qkv);
  const Device device = qkv.device();
  const Stream stream = LayerStream(device);
  const int64_t D = d.head_dim, T = d.seq, count = d.batch * d.heads;
  RETURN_IF_ERROR(USINE_CUDA_STATUS(
      cuda::LaunchSplitHeads(F32(qkv), {d.batch, T, 3, d.heads, D}, F32(heads), kDefaultStream)));
  ASSIGN_OR_RETURN(const Tensor q, Heads(heads, 0, d, D));
  ASSIGN_OR_RETURN(const Tensor k, Heads(heads, 1, d, D));
  ASSIGN_OR_RETURN(const Tensor v, Heads(heads, 2, d, D));
  ASSIGN_OR_RETURN(const Tensor p, Heads(probs, 0, d, T));
  // scores = q k^T / sqrt(D), per head, into probs; then the causal softmax in place.
  RETURN_IF_ERROR(
      BatchedMatmul(q, k, p, {.transpose_b = true, .alpha = AttentionScale(d)}, stream));
  RETURN_IF_ERROR(
      USINE_CUDA_STATUS(cuda::LaunchCausalSoftmaxForward(F32(probs), count, T, kDefaultStream)));
  // out = probs v, per head, then back to [B, T, C].
  ASSIGN_OR_RETURN(Tensor out_heads, Tensor::Empty({count, T, D}, DType::kF32, device));
  RETURN_IF_ERROR(BatchedMatmul(p, v, out_heads, {}, stream));
  return USINE_CUDA_STATUS(cuda::LaunchMergeHeads(F32(out_heads), {d.batch, T, 1, d.heads, D},
                                                  F32(out), kDefaultStream));
}

absl::Status CudaCausalAttentionBackward(const Tensor& dout, const Tensor& heads,
                                         const Tensor& probs, const AttentionDims& d,
                                         const Tensor& dqkv) {
  USINE_ENTER_DEVICE_OF(dout);
  const Device device = dout.device();
  const Stream stream = LayerStream(device);
  const int64_t D = d.head_dim, T = d.seq, count = d.batch * d.heads;
  ASSIGN_OR_RETURN(Tensor dout_heads, Tensor::Empty({count, T, D}, DType::kF32, device));
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cuda::LaunchSplitHeads(F32(dout), {d.batch, T, 1, d.heads, D},
                                                           F32(dout_heads), kDefaultStream)));
  ASSIGN_OR_RETURN(Tensor dheads, Tensor::Empty(heads.shape(), DType::kF32, device));
  ASSIGN_OR_RETURN(Tensor dscores, Tensor::Empty({count, T, T}, DType::kF32, device));
  ASSIGN_OR_RETURN(const Tensor q, Heads(heads, 0, d, D));
  ASSIGN_OR_RETURN(const Tensor k, Heads(heads, 1, d, D));
  ASSIGN_OR_RETURN(const Tensor v, Heads(heads, 2, d, D));
  ASSIGN_OR_RETURN(const Tensor p, Heads(probs, 0, d, T));
  ASSIGN_OR_RETURN(const Tensor dq, Heads(dheads, 0, d, D));
  ASSIGN_OR_RETURN(const Tensor dk, Heads(dheads, 1, d, D));
  ASSIGN_OR_RETURN(const Tensor dv, Heads(dheads, 2, d, D));
  // dout and dscores each feed two products: rounded once for both (ProductOperand; under
  // kBf16 each product would otherwise cast its own copy), with the same bits.
  ASSIGN_OR_RETURN(const Tensor dout_op, ProductOperand(dout_heads, stream));
  ASSIGN_OR_RETURN(const Tensor v_op, ProductOperand(v, stream));
  ASSIGN_OR_RETURN(const Tensor p_op, ProductOperand(p, stream));
  // dprobs = dout v^T; dv = probs^T dout.
  RETURN_IF_ERROR(BatchedMatmul(dout_op, v_op, dscores, {.transpose_b = true}, stream));
  RETURN_IF_ERROR(BatchedMatmul(p_op, dout_op, dv, {.transpose_a = true}, stream));
  // Through the softmax and the 1/sqrt(D) scaling, in place.
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cuda::LaunchCausalSoftmaxBackward(
      F32(probs), count, T, AttentionScale(d), F32(dscores), kDefaultStream)));
  // dq = dscores k; dk = dscores^T q.
  ASSIGN_OR_RETURN(const Tensor dscores_op, ProductOperand(dscores, stream));
  ASSIGN_OR_RETURN(const Tensor k_op, ProductOperand(k, stream));
  ASSIGN_OR_RETURN(const Tensor q_op, ProductOperand(q, stream));
  RETURN_IF_ERROR(BatchedMatmul(dscores_op, k_op, dq, {}, stream));
  RETURN_IF_ERROR(BatchedMatmul(dscores_op, q_op, dk, {.transpose_a = true}, stream));
  return USINE_CUDA_STATUS(
      cuda::LaunchMergeHeads(F32(dheads), {d.batch, T, 3, d.heads, D}, F32(dqkv), kDefaultStream));
}

static_assert(kFlashAttentionMaxHeadDim == cuda::kFlashMaxHeadDim);

namespace {

cuda::FlashShape FlashShapeOf(const AttentionDims& d) {
  return {.batch = d.batch, .seq = d.seq, .heads = d.heads, .head_dim = d.head_dim};
}

// The flash kernels' arrays: lse f32, qkv f32 or bf16 (for the bf16 kernels), the others in
// qkv's dtype. InvalidArgument otherwise, which the kernels would misread.
absl::Status CheckFlashArrays(const Tensor& qkv, std::initializer_list<const Tensor*> arrays,
                              const Tensor& lse, absl::string_view what) {
  if (lse.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected an f32 lse, got ", lse.DebugString()));
  }
  if (qkv.dtype() != DType::kF32 && qkv.dtype() != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected an f32 or bf16 qkv, got ", qkv.DebugString()));
  }
  for (const Tensor* t : arrays) {
    if (t->dtype() != qkv.dtype()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": expected every array but lse in qkv's dtype ",
                       DTypeName(qkv.dtype()), ", got ", t->DebugString()));
    }
  }
  return absl::OkStatus();
}

template <typename T>
const T* DataOrNull(const Tensor* t) {
  return t == nullptr ? nullptr : static_cast<const T*>(t->raw_data());
}

// Whether the bf16 tensor-core kernels run: always for bf16 arrays (the f32 kernels read f32;
// an error where the bf16 ones cannot take them); for f32 ones under a bf16 matmul precision,
// where they take the shape and arrays (dout, of qkv's dtype: null in the forward pass; the
// result: out in the forward pass, dqkv in the backward). Where
// they do not, the f32 kernels run, and the process's log says so once: a run that asked for
// bf16 should not be slower unawares.
absl::StatusOr<bool> UseBf16Flash(const cuda::FlashShape& shape, const Tensor& qkv,
                                  const Tensor* dout, const Tensor& result) {
  if (qkv.dtype() == DType::kBF16) {
    if (cuda::Bf16FlashAttentionTakes(shape, DataOrNull<BFloat16>(&qkv), DataOrNull<BFloat16>(dout),
                                      DataOrNull<BFloat16>(&result))) {
      return true;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "flash attention: bf16 arrays need the bf16 kernels, which take head sizes that are "
        "multiples of 16 up to ",
        cuda::kFlashMaxHeadDim,
        ", qkv and dout 16-byte aligned and the result 4-byte aligned; got head size ",
        shape.head_dim));
  }
  if (F32MatmulPrecision() != MatmulPrecision::kBf16) return false;
  if (cuda::Bf16FlashAttentionTakes(shape, F32(qkv), DataOrNull<float>(dout), F32(result))) {
    return true;
  }
  static std::atomic<bool> told{false};
  if (!told.exchange(true)) {
    USINE_LOG(WARNING) << "flash attention under bf16 products: head size " << shape.head_dim
                       << (dout == nullptr ? " (forward)" : " (backward)")
                       << " or an array's alignment is not what the bf16 tensor-core kernels "
                          "take (a multiple of 16 up to "
                       << cuda::kFlashMaxHeadDim
                       << ", 16-byte aligned); the f32 kernels run instead (said once)";
  }
  return false;
}

// Whether the arrays of CudaCachedAttentionForward are as `d` says (cuda_layers.h), on qkv's
// device: the kernels index them by `d` alone.
absl::Status CheckCachedAttentionArrays(const Tensor& qkv, const CachedAttentionDims& d,
                                        const Tensor& keys, const Tensor& values,
                                        const Tensor& out) {
  constexpr absl::string_view kWhat = "CudaCachedAttentionForward";
  if (d.batch < 1 || d.fresh < 1 || d.past < 0 || d.heads < 1 || d.head_dim < 1 ||
      d.past + d.fresh > d.capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": dims batch ", d.batch, ", fresh ", d.fresh, ", past ", d.past,
                     ", capacity ", d.capacity, ", heads ", d.heads, ", head size ", d.head_dim,
                     " (expected >= 1 each, past >= 0, past + fresh <= capacity)"));
  }
  if (d.head_dim > kCachedAttentionMaxHeadDim) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": head size ", d.head_dim, " (at most ",
                                                   kCachedAttentionMaxHeadDim, ")"));
  }
  const int64_t c = d.heads * d.head_dim;
  if ((qkv.dtype() != DType::kF32 && qkv.dtype() != DType::kBF16) ||
      qkv.shape() != Shape{d.batch, d.fresh, 3 * c} || qkv.device().is_cpu()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": expected an f32 or bf16 qkv [",
                                                   d.batch, ", ", d.fresh, ", ", 3 * c,
                                                   "] on a CUDA device, got ", qkv.DebugString()));
  }
  const std::pair<const Tensor*, Shape> arrays[] = {{&keys, Shape{d.batch, d.capacity, c}},
                                                    {&values, Shape{d.batch, d.capacity, c}},
                                                    {&out, Shape{d.batch, d.fresh, c}}};
  for (const auto& [t, shape] : arrays) {
    if (t->dtype() != DType::kF32 || t->shape() != shape || t->device() != qkv.device()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": expected an f32 array ", shape.ToString(), " on ",
                       qkv.device().ToString(), ", got ", t->DebugString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CudaCachedAttentionForward(const Tensor& qkv, const CachedAttentionDims& d,
                                        const Tensor& keys, const Tensor& values,
                                        const Tensor& out) {
  static_assert(kCachedAttentionMaxHeadDim == cuda::kCachedAttentionMaxHeadDim);
  RETURN_IF_ERROR(CheckCachedAttentionArrays(qkv, d, keys, values, out));
  USINE_ENTER_DEVICE_OF(qkv);
  return USINE_CUDA_STATUS(WithInput(qkv, [&](const auto* in) {
    return cuda::LaunchCachedAttentionForward(in, d, F32(keys), F32(values), F32(out),
                                              kDefaultStream);
  }));
}

absl::Status CudaFlashAttentionForward(const Tensor& qkv, const AttentionDims& d, const Tensor& out,
                                       const Tensor& lse) {
  RETURN_IF_ERROR(CheckFlashArrays(qkv, {&out}, lse, "CudaFlashAttentionForward"));
  USINE_ENTER_DEVICE_OF(qkv);
  const cuda::FlashShape shape = FlashShapeOf(d);
  ASSIGN_OR_RETURN(const bool bf16, UseBf16Flash(shape, qkv, nullptr, out));
  if (bf16) {
    return USINE_CUDA_STATUS(WithOutput(out, [&](auto* o) {
      using T = std::remove_pointer_t<decltype(o)>;
      return cuda::LaunchBf16FlashAttentionForward(DataOrNull<T>(&qkv), shape, o, F32(lse),
                                                   kDefaultStream);
    }));
  }
  return USINE_CUDA_STATUS(
      cuda::LaunchFlashAttentionForward(F32(qkv), shape, F32(out), F32(lse), kDefaultStream));
}

absl::Status CudaFlashAttentionBackward(const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                        const Tensor& lse, const AttentionDims& d,
                                        const Tensor& dqkv) {
  RETURN_IF_ERROR(CheckFlashArrays(qkv, {&dout, &out, &dqkv}, lse, "CudaFlashAttentionBackward"));
  USINE_ENTER_DEVICE_OF(dout);
  const cuda::FlashShape shape = FlashShapeOf(d);
  ASSIGN_OR_RETURN(Tensor scratch,
                   Scratch(cuda::FlashAttentionBackwardScratch(shape), dout.device()));
  ASSIGN_OR_RETURN(const bool bf16, UseBf16Flash(shape, qkv, &dout, dqkv));
  if (bf16) {
    return USINE_CUDA_STATUS(WithOutput(dqkv, [&](auto* dq) {
      using T = std::remove_pointer_t<decltype(dq)>;
      return cuda::LaunchBf16FlashAttentionBackward(DataOrNull<T>(&qkv), DataOrNull<T>(&out),
                                                    DataOrNull<T>(&dout), F32(lse), shape, dq,
                                                    F32(scratch), kDefaultStream);
    }));
  }
  return USINE_CUDA_STATUS(cuda::LaunchFlashAttentionBackward(
      F32(qkv), F32(out), F32(dout), F32(lse), shape, F32(dqkv), F32(scratch), kDefaultStream));
}

}  // namespace usine::nn_internal
