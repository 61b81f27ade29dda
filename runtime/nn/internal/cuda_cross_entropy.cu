// Cross-entropy kernels behind cuda_cross_entropy.h.
#include <cstdint>
#include <type_traits>

#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_cross_entropy.h"
#include "runtime/nn/internal/cuda_mma.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

using kernels_internal::FromFloat;
using kernels_internal::ToFloat;

constexpr int kThreads = 256;

// Two neighbouring elements of a row, loaded or stored in one access: rows of bf16 logits are
// read 4 bytes a thread, as f32 ones are at least.
template <typename T>
struct alignas(2 * sizeof(T)) Pair {
  T first, second;
};

// Whether kernels may access [rows, count] arrays at `pointers` by Pairs: count even and each
// array aligned to a pair of its elements.
template <typename... T>
bool PairsFit(int64_t count, const T*... pointers) {
  return count % 2 == 0 && ((reinterpret_cast<uintptr_t>(pointers) % (2 * sizeof(T)) == 0) && ...);
}

// Calls visit(j, row[j] as f32) for this thread's elements j of row[0, n), in increasing j: the
// pairs (2i, 2i + 1) of i = threadIdx.x, threadIdx.x + kThreads, ..., and on thread 0 last the
// last element of an odd n. The same elements and order either way, so the same bits; kPairs
// only loads each pair in one access (REQUIRES then: row aligned to a Pair).
template <bool kPairs, typename T, typename Visit>
__device__ void ForEachOfRow(const T* row, int64_t n, const Visit& visit) {
  for (int64_t i = threadIdx.x; i < n / 2; i += kThreads) {
    float first, second;
    if constexpr (kPairs) {
      const Pair<T> p = reinterpret_cast<const Pair<T>*>(row)[i];
      first = ToFloat(p.first);
      second = ToFloat(p.second);
    } else {
      first = ToFloat(row[2 * i]);
      second = ToFloat(row[2 * i + 1]);
    }
    visit(2 * i, first);
    visit(2 * i + 1, second);
  }
  if (n % 2 == 1 && threadIdx.x == 0) visit(n - 1, ToFloat(row[n - 1]));
}

// out[j] <- value(j, row[j] as f32) over [0, n), each element read, then written, by one
// thread (so `out` may be `row`). With kPairs, n is even and both are aligned to a Pair.
template <bool kPairs, typename TIn, typename TOut, typename Value>
__device__ void MapRow(const TIn* row, int64_t n, const Value& value, TOut* out) {
  if constexpr (kPairs) {
    const auto* in = reinterpret_cast<const Pair<TIn>*>(row);
    auto* to = reinterpret_cast<Pair<TOut>*>(out);
    for (int64_t i = threadIdx.x; i < n / 2; i += kThreads) {
      const Pair<TIn> p = in[i];
      to[i] = {FromFloat<TOut>(value(2 * i, ToFloat(p.first))),
               FromFloat<TOut>(value(2 * i + 1, ToFloat(p.second)))};
    }
  } else {
    for (int64_t j = threadIdx.x; j < n; j += kThreads)
      out[j] = FromFloat<TOut>(value(j, ToFloat(row[j])));
  }
}

// A row's softmax statistics over [0, vocab): its max and the sum of e^(x - max).
struct RowStats {
  float max;
  float sum;
  __device__ float LogSumExp() const { return max + logf(sum); }
};

// Row statistics over row[0, n) in one pass over it, from the block's threads together (a
// block-wide collective: every thread calls it and gets the value): each thread keeps the max
// of its elements and the sum of e^(x - that max), rescaled when the max grows (the online
// softmax); the block then takes the max of the threads' maxima and the sum of their sums
// rescaled to it, along BlockReduce's fixed trees. A NaN logit makes the sum NaN.
template <bool kPairs, typename T>
__device__ RowStats RowStatsOf(const T* row, int64_t n, float* scratch) {
  float max = -INFINITY, sum = 0.0f;
  ForEachOfRow<kPairs>(row, n, [&](int64_t, float x) {
    if (x > max) {
      sum = sum * expf(max - x) + 1.0f;  // 0 * e^-inf = 0 for a thread's first element.
      max = x;
    } else if (x != -INFINITY) {  // -inf adds e^-inf = 0, and would make e^(-inf + inf) NaN.
      sum += expf(x - max);
    }
  });
  const float row_max = BlockReduce<kThreads, /*kMax=*/true>(max, scratch);
  const float rescaled = sum == 0.0f ? 0.0f : sum * expf(max - row_max);
  return {row_max, BlockReduce<kThreads>(rescaled, scratch)};
}

// The max of row[0, n) (-inf for n = 0) and the sum of e^(row[j] - max) over it (max: a
// vocabulary-parallel group's), block-wide collectives as RowStatsOf.
template <bool kPairs, typename T>
__device__ float RowMax(const T* row, int64_t n, float* scratch) {
  float max = -INFINITY;
  ForEachOfRow<kPairs>(row, n, [&](int64_t, float x) { max = fmaxf(max, x); });
  return BlockReduce<kThreads, /*kMax=*/true>(max, scratch);
}
template <bool kPairs, typename T>
__device__ float RowSumExp(const T* row, int64_t n, float max, float* scratch) {
  float sum = 0.0f;
  ForEachOfRow<kPairs>(row, n, [&](int64_t, float x) { sum += expf(x - max); });
  return BlockReduce<kThreads>(sum, scratch);
}

// The gradient of class j, whose logit is x: e^(x - shift) * factor - (j == target ? scale : 0).
// Every kernel that writes a gradient computes it here, so that they give the same bits.
__device__ inline float ClassGradient(float x, int64_t j, int64_t target, float shift, float factor,
                                      float scale) {
  return expf(x - shift) * factor - (j == target ? scale : 0.0f);
}

// gradient[j] <- ClassGradient(row[j], j, ...) over [0, vocab), 0 over the padding: scale *
// (softmax - onehot) with shift = max and factor = scale / sum, or shift = log-sum-exp and factor =
// scale. `gradient` may be `row` (in place).
template <bool kPairs, typename TIn, typename TOut>
__device__ void WriteRowGradient(const TIn* row, int64_t target, float shift, float factor,
                                 int64_t vocab, int64_t padded_vocab, float scale, TOut* gradient) {
  MapRow<kPairs>(
      row, padded_vocab,
      [&](int64_t j, float x) {
        return j < vocab ? ClassGradient(x, j, target, shift, factor, scale) : 0.0f;
      },
      gradient);
}

template <bool kPairs, typename TIn>
__global__ void CrossEntropyForwardKernel(const TIn* logits, const int32_t* targets, int64_t vocab,
                                          int64_t padded_vocab, float* lse, float* losses) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const TIn* row = logits + r * padded_vocab;
  const float log_sum_exp = RowStatsOf<kPairs>(row, vocab, scratch).LogSumExp();
  if (threadIdx.x == 0) {
    lse[r] = log_sum_exp;
    losses[r] = log_sum_exp - ToFloat(row[targets[r]]);
  }
}

template <bool kPairs, typename T>
__global__ void CrossEntropyBackwardKernel(const int32_t* targets, const float* lse, int64_t vocab,
                                           int64_t padded_vocab, float scale, T* logits) {
  const int64_t r = blockIdx.x;
  T* row = logits + r * padded_vocab;
  WriteRowGradient<kPairs>(row, targets[r], lse[r], scale, vocab, padded_vocab, scale, row);
}

template <bool kPairs, typename TIn, typename TOut>
__global__ void CrossEntropyForwardWithGradientKernel(const TIn* logits, const int32_t* targets,
                                                      int64_t vocab, int64_t padded_vocab,
                                                      float scale, float* losses, TOut* gradient) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const TIn* row = logits + r * padded_vocab;
  const int64_t target = targets[r];
  // Read before the barriers in RowStatsOf: after them, an in-place gradient overwrites it.
  const float target_logit = threadIdx.x == 0 ? ToFloat(row[target]) : 0.0f;
  const RowStats stats = RowStatsOf<kPairs>(row, vocab, scratch);
  if (threadIdx.x == 0) losses[r] = stats.LogSumExp() - target_logit;
  // The exponentials relative to the max, scaled by 1 / sum: no log-sum-exp rounded to f32 in
  // between.
  WriteRowGradient<kPairs>(row, target, stats.max, scale / stats.sum, vocab, padded_vocab, scale,
                           gradient + r * padded_vocab);
}

// Eight bf16 elements, loaded or stored in one 16-byte access.
constexpr int kWidth = 8;
struct alignas(16) Chunk {
  BFloat16 e[kWidth];
};

// CrossEntropyForwardWithGradientKernel for bf16 logits and gradient whose row fits in shared
// memory (CrossEntropyRowCached): the row is copied there once (cp.async, 16 bytes at a time),
// and the statistics and the gradient read it there, so global memory sees each logit read
// once and each gradient element written once, 16 bytes an access. The same elements in the
// same order as the uncached kernel, so the same bits.
__global__ void CachedRowForwardWithGradientKernel(const BFloat16* logits, const int32_t* targets,
                                                   int64_t vocab, int64_t padded_vocab, float scale,
                                                   float* losses, BFloat16* gradient) {
  extern __shared__ __align__(16) unsigned char cached[];
  __shared__ float scratch[kThreads / kWarpSize];
  auto* row = reinterpret_cast<BFloat16*>(cached);
  const int64_t r = blockIdx.x;
  // The 16-byte chunks that hold the classes [0, vocab); padded_vocab is a multiple of kWidth.
  const int64_t chunks = (vocab + kWidth - 1) / kWidth;
  const BFloat16* from = logits + r * padded_vocab;
  for (int64_t i = threadIdx.x; i < chunks; i += kThreads) {
    CpAsync16(row + i * kWidth, from + i * kWidth, /*zero=*/false);
  }
  CpAsyncCommit();
  CpAsyncWait<0>();
  __syncthreads();
  const int64_t target = targets[r];
  const RowStats stats = RowStatsOf</*kPairs=*/true>(row, vocab, scratch);
  if (threadIdx.x == 0) losses[r] = stats.LogSumExp() - ToFloat(row[target]);
  const float factor = scale / stats.sum;
  const auto* in = reinterpret_cast<const Chunk*>(row);
  auto* to = reinterpret_cast<Chunk*>(gradient + r * padded_vocab);
  for (int64_t i = threadIdx.x; i < padded_vocab / kWidth; i += kThreads) {
    Chunk out = {};  // Zeros for the padding.
    if (i < chunks) {
      const Chunk x = in[i];
#pragma unroll
      for (int e = 0; e < kWidth; ++e) {
        const int64_t j = i * kWidth + e;
        if (j < vocab) {
          out.e[e] = FromFloat<BFloat16>(
              ClassGradient(ToFloat(x.e[e]), j, target, stats.max, factor, scale));
        }
      }
    }
    to[i] = out;
  }
}

// The vocabulary-parallel forms: row r of this rank's logits [rows, count], whose columns
// [0, valid) are the classes [begin, begin + valid).
template <bool kPairs, typename TIn>
__global__ void SliceRowMaxKernel(const TIn* logits, int64_t count, int64_t valid, float* max) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const float row_max = RowMax<kPairs>(logits + r * count, valid, scratch);
  if (threadIdx.x == 0) max[r] = row_max;
}

template <bool kPairs, typename TIn>
__global__ void SliceSumExpAndTargetKernel(const TIn* logits, const int32_t* targets, int64_t rows,
                                           int64_t begin, int64_t count, int64_t valid,
                                           const float* max, float* sums) {
  __shared__ float scratch[kThreads / kWarpSize];
  const int64_t r = blockIdx.x;
  const TIn* row = logits + r * count;
  const float sum = RowSumExp<kPairs>(row, valid, max[r], scratch);
  if (threadIdx.x == 0) {
    const int64_t target = targets[r] - begin;
    sums[r] = sum;
    sums[rows + r] = target >= 0 && target < valid ? ToFloat(row[target]) : 0.0f;
  }
}

template <bool kPairs, typename TIn, typename TOut>
__global__ void SliceCrossEntropyGradientKernel(const TIn* logits, const int32_t* targets,
                                                const float* lse, int64_t begin, int64_t count,
                                                int64_t valid, float scale, TOut* gradient) {
  const int64_t r = blockIdx.x;
  // A target outside the slice (negative or >= valid) matches no column.
  WriteRowGradient<kPairs>(logits + r * count, targets[r] - begin, lse[r], scale, valid, count,
                           scale, gradient + r * count);
}

// Launches kernel_of(std::bool_constant<pairs>) with one block of kThreads per row: kernel_of
// picks the kernel with or without Pair accesses, which otherwise take the same arguments.
template <typename KernelOf, typename... Args>
cudaError_t LaunchRows(bool pairs, int64_t rows, cudaStream_t stream, const KernelOf& kernel_of,
                       Args... args) {
  if (rows <= 0) return cudaSuccess;
  const auto kernel = pairs ? kernel_of(std::true_type{}) : kernel_of(std::false_type{});
  kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(args...);
  return cudaGetLastError();
}

// Bytes of shared memory for CachedRowForwardWithGradientKernel's row: two blocks fit in an
// H100 multiprocessor's 228 KB, one row of GPT-2's padded vocabulary (100.6 KB) each.
constexpr int64_t kCachedRowBytes = 112 << 10;

}  // namespace

bool CrossEntropyRowCached(int64_t padded_vocab, const void* logits, const void* gradient) {
  return padded_vocab % kWidth == 0 &&
         padded_vocab * static_cast<int64_t>(sizeof(BFloat16)) <= kCachedRowBytes &&
         reinterpret_cast<uintptr_t>(logits) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(gradient) % 16 == 0;
}

template <typename TIn>
cudaError_t LaunchCrossEntropyForward(const TIn* logits, const int32_t* targets, int64_t rows,
                                      int64_t vocab, int64_t padded_vocab, float* lse,
                                      float* losses, cudaStream_t stream) {
  return LaunchRows(
      PairsFit(padded_vocab, logits), rows, stream,
      [](auto pairs) { return &CrossEntropyForwardKernel<decltype(pairs)::value, TIn>; }, logits,
      targets, vocab, padded_vocab, lse, losses);
}

template <typename T>
cudaError_t LaunchCrossEntropyBackward(const int32_t* targets, const float* lse, int64_t rows,
                                       int64_t vocab, int64_t padded_vocab, float scale, T* logits,
                                       cudaStream_t stream) {
  return LaunchRows(
      PairsFit(padded_vocab, logits), rows, stream,
      [](auto pairs) { return &CrossEntropyBackwardKernel<decltype(pairs)::value, T>; }, targets,
      lse, vocab, padded_vocab, scale, logits);
}

template <typename TIn, typename TOut>
cudaError_t LaunchCrossEntropyForwardWithGradient(const TIn* logits, const int32_t* targets,
                                                  int64_t rows, int64_t vocab, int64_t padded_vocab,
                                                  float scale, float* losses, TOut* gradient,
                                                  cudaStream_t stream) {
  if constexpr (std::is_same_v<TIn, BFloat16> && std::is_same_v<TOut, BFloat16>) {
    // The limit is raised to the most any row takes, the same on every call (a device whose
    // blocks may not have that much, 99 KB on sm_86 and sm_89, keeps the two passes).
    if (rows > 0 && CrossEntropyRowCached(padded_vocab, logits, gradient)) {
      if (cudaFuncSetAttribute(CachedRowForwardWithGradientKernel,
                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(kCachedRowBytes)) == cudaSuccess) {
        const auto bytes = static_cast<size_t>(padded_vocab) * sizeof(BFloat16);
        CachedRowForwardWithGradientKernel<<<static_cast<unsigned>(rows), kThreads, bytes,
                                             stream>>>(logits, targets, vocab, padded_vocab, scale,
                                                       losses, gradient);
        return cudaGetLastError();
      }
      (void)cudaGetLastError();  // The refusal is not this launch's error.
    }
  }
  return LaunchRows(
      PairsFit(padded_vocab, logits, gradient), rows, stream,
      [](auto pairs) {
        return &CrossEntropyForwardWithGradientKernel<decltype(pairs)::value, TIn, TOut>;
      },
      logits, targets, vocab, padded_vocab, scale, losses, gradient);
}

template <typename TIn>
cudaError_t LaunchSliceRowMax(const TIn* logits, int64_t rows, int64_t count, int64_t valid,
                              float* max, cudaStream_t stream) {
  return LaunchRows(
      PairsFit(count, logits), rows, stream,
      [](auto pairs) { return &SliceRowMaxKernel<decltype(pairs)::value, TIn>; }, logits, count,
      valid, max);
}

template <typename TIn>
cudaError_t LaunchSliceSumExpAndTarget(const TIn* logits, const int32_t* targets, int64_t rows,
                                       int64_t begin, int64_t count, int64_t valid,
                                       const float* max, float* sums, cudaStream_t stream) {
  return LaunchRows(
      PairsFit(count, logits), rows, stream,
      [](auto pairs) { return &SliceSumExpAndTargetKernel<decltype(pairs)::value, TIn>; }, logits,
      targets, rows, begin, count, valid, max, sums);
}

template <typename TIn, typename TOut>
cudaError_t LaunchSliceCrossEntropyGradient(const TIn* logits, const int32_t* targets,
                                            const float* lse, int64_t rows, int64_t begin,
                                            int64_t count, int64_t valid, float scale,
                                            TOut* gradient, cudaStream_t stream) {
  return LaunchRows(
      PairsFit(count, logits, gradient), rows, stream,
      [](auto pairs) {
        return &SliceCrossEntropyGradientKernel<decltype(pairs)::value, TIn, TOut>;
      },
      logits, targets, lse, begin, count, valid, scale, gradient);
}

// The logits are f32 or bf16; a gradient is f32 for f32 logits only.
#define USINE_INSTANTIATE_GRADIENTS(TIn, TOut)                                                    \
  template cudaError_t LaunchCrossEntropyForwardWithGradient<TIn, TOut>(                          \
      const TIn*, const int32_t*, int64_t, int64_t, int64_t, float, float*, TOut*, cudaStream_t); \
  template cudaError_t LaunchSliceCrossEntropyGradient<TIn, TOut>(                                \
      const TIn*, const int32_t*, const float*, int64_t, int64_t, int64_t, int64_t, float, TOut*, \
      cudaStream_t);
USINE_INSTANTIATE_GRADIENTS(float, float)
USINE_INSTANTIATE_GRADIENTS(float, BFloat16)
USINE_INSTANTIATE_GRADIENTS(BFloat16, BFloat16)
#undef USINE_INSTANTIATE_GRADIENTS

#define USINE_INSTANTIATE_LOGITS(T)                                                              \
  template cudaError_t LaunchCrossEntropyForward<T>(const T*, const int32_t*, int64_t, int64_t,  \
                                                    int64_t, float*, float*, cudaStream_t);      \
  template cudaError_t LaunchCrossEntropyBackward<T>(const int32_t*, const float*, int64_t,      \
                                                     int64_t, int64_t, float, T*, cudaStream_t); \
  template cudaError_t LaunchSliceRowMax<T>(const T*, int64_t, int64_t, int64_t, float*,         \
                                            cudaStream_t);                                       \
  template cudaError_t LaunchSliceSumExpAndTarget<T>(const T*, const int32_t*, int64_t, int64_t, \
                                                     int64_t, int64_t, const float*, float*,     \
                                                     cudaStream_t);
USINE_INSTANTIATE_LOGITS(float)
USINE_INSTANTIATE_LOGITS(BFloat16)
#undef USINE_INSTANTIATE_LOGITS

}  // namespace usine::nn_internal::cuda
