// Flash-attention-style causal attention kernels behind cuda_flash_attention.h.
//
// Every kernel works on one head and one tile of kTile rows (cuda_flash_tiles.cuh's
// FlashHead and tile order), with kThreads threads seen as a kSide x kSide grid (ty, tx). In a
// product with kTile columns (scores) thread (ty, tx) owns rows ty + kSide i and columns tx + kSide
// j, i, j < kPer; in one with kMaxD columns (outputs, gradients) rows ty + kSide i and columns tx +
// kSide j, j < kMaxD / kSide. The head size D is padded with zeros to kMaxD (32, 64 or 128) in
// shared memory, and rows past T are zeros too, so every tile is whole: padded columns add 0 to the
// dot products, and neither padded columns nor padded rows are written out.
#include <cmath>

#include "runtime/nn/internal/cuda_flash_attention.h"
#include "runtime/nn/internal/cuda_flash_tiles.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

constexpr int kTile = kFlashTile;
constexpr int kSide = 16;
constexpr int kThreads = kSide * kSide;
constexpr int kPer = kTile / kSide;
constexpr int kScoreStride = kTile + 1;  // Rows of [kTile, kTile] tiles, padded (bank conflicts).
static_assert(kThreads == 4 * kTile, "the softmax update gives each row 4 threads");

template <int kMaxD>
constexpr int kHeadStride = kMaxD + 1;  // Rows of [kTile, kMaxD] tiles, padded likewise.
template <int kMaxD>
constexpr int kHeadTile = kTile* kHeadStride<kMaxD>;
constexpr int kScoreTile = kTile * kScoreStride;

// Shared bytes per block of each kernel (see their layouts).
template <int kMaxD>
constexpr int kForwardBytes = (3 * kHeadTile<kMaxD> + kScoreTile + kTile) * sizeof(float);
template <int kMaxD>
constexpr int kQueryGradBytes = (4 * kHeadTile<kMaxD> + kScoreTile + 2 * kTile) * sizeof(float);
template <int kMaxD>
constexpr int kKeyGradBytes = (4 * kHeadTile<kMaxD> + 2 * kScoreTile + 2 * kTile) * sizeof(float);

// tile[r][d] = rows[(first + r) * stride + d] for first + r < seq and d < head_dim, else 0.
// Called by every thread of the block.
template <int kMaxD>
__device__ void LoadTile(const float* rows, int64_t stride, int64_t first, int64_t seq,
                         int64_t head_dim, float* tile) {
  for (int i = static_cast<int>(threadIdx.x); i < kTile * kMaxD; i += kThreads) {
    const int r = i / kMaxD, d = i % kMaxD;
    const int64_t t = first + r;
    tile[r * kHeadStride<kMaxD> + d] = t < seq && d < head_dim ? rows[t * stride + d] : 0.0f;
  }
}

// row_values[r] = values[first + r] for first + r < seq, else 0.
__device__ void LoadRowValues(const float* values, int64_t first, int64_t seq, float* row_values) {
  for (int r = static_cast<int>(threadIdx.x); r < kTile; r += kThreads) {
    row_values[r] = first + r < seq ? values[first + r] : 0.0f;
  }
}

// acc[i][j] = sum over d of a[ty + kSide i][d] * b[tx + kSide j][d], in increasing d: this
// thread's entries of a b^T for [kTile, kMaxD] tiles a and b.
template <int kMaxD>
__device__ void TileScores(const float* a, const float* b, float (&acc)[kPer][kPer]) {
  const int ty = static_cast<int>(threadIdx.x) / kSide, tx = static_cast<int>(threadIdx.x) % kSide;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) acc[i][j] = 0.0f;
  }
#pragma unroll 4
  for (int d = 0; d < kMaxD; ++d) {
    float av[kPer], bv[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) av[i] = a[(ty + kSide * i) * kHeadStride<kMaxD> + d];
#pragma unroll
    for (int j = 0; j < kPer; ++j) bv[j] = b[(tx + kSide * j) * kHeadStride<kMaxD> + d];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
#pragma unroll
      for (int j = 0; j < kPer; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }
}

// acc[i][j] += sum over c of w(ty + kSide i, c) * m[c][tx + kSide j], in increasing c, where
// w(r, c) is weights[r][c], or weights[c][r] when kTransposed: this thread's entries of
// w m for a [kTile, kTile] tile `weights` and a [kTile, kMaxD] tile m.
template <int kMaxD, bool kTransposed>
__device__ void AccumulateProduct(const float* weights, const float* m,
                                  float (&acc)[kPer][kMaxD / kSide]) {
  const int ty = static_cast<int>(threadIdx.x) / kSide, tx = static_cast<int>(threadIdx.x) % kSide;
#pragma unroll 4
  for (int c = 0; c < kTile; ++c) {
    float wv[kPer], mv[kMaxD / kSide];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int r = ty + kSide * i;
      wv[i] = kTransposed ? weights[c * kScoreStride + r] : weights[r * kScoreStride + c];
    }
#pragma unroll
    for (int j = 0; j < kMaxD / kSide; ++j) mv[j] = m[c * kHeadStride<kMaxD> + tx + kSide * j];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
#pragma unroll
      for (int j = 0; j < kMaxD / kSide; ++j) acc[i][j] = fmaf(wv[i], mv[j], acc[i][j]);
    }
  }
}

// The sum (maximum) over the 4 consecutive lanes of a quad, the same bits in each (a butterfly,
// as WarpSum). Every lane of the warp must call it.
__device__ inline float QuadSum(float v) {
  v = __fadd_rn(v, __shfl_xor_sync(kFullMask, v, 1));
  return __fadd_rn(v, __shfl_xor_sync(kFullMask, v, 2));
}
__device__ inline float QuadMax(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}

// Writes this thread's entries of a [kTile, kMaxD] result for rows first + r < seq and columns
// d < head_dim: rows[(first + r) * stride + d] = acc * factor.
template <int kMaxD>
__device__ void StoreTile(const float (&acc)[kPer][kMaxD / kSide], float factor, int64_t first,
                          int64_t seq, int64_t head_dim, int64_t stride, float* rows) {
  const int ty = static_cast<int>(threadIdx.x) / kSide, tx = static_cast<int>(threadIdx.x) % kSide;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t t = first + ty + kSide * i;
    if (t >= seq) continue;
#pragma unroll
    for (int j = 0; j < kMaxD / kSide; ++j) {
      const int d = tx + kSide * j;
      if (d < head_dim) rows[t * stride + d] = acc[i][j] * factor;
    }
  }
}

// Forward. Shared memory: q, k, v [kTile, kMaxD]; p [kTile, kTile] (scores, then exp(score -
// running max)); row_factor [kTile].
template <int kMaxD>
__global__ void __launch_bounds__(kThreads)
    FlashForwardKernel(const float* qkv, FlashShape s, float scale, float* out, float* lse) {
  extern __shared__ float shared[];
  float* q = shared;
  float* k = q + kHeadTile<kMaxD>;
  float* v = k + kHeadTile<kMaxD>;
  float* p = v + kHeadTile<kMaxD>;
  float* row_factor = p + kScoreTile;
  const int ty = static_cast<int>(threadIdx.x) / kSide, tx = static_cast<int>(threadIdx.x) % kSide;
  const int64_t bh = FlashHead(s), first = LastTileFirst(s), stride = 3 * s.heads * s.head_dim;
  const float* q_rows = HeadRows(qkv, s, 3, 0, bh);
  const float* k_rows = HeadRows(qkv, s, 3, 1, bh);
  const float* v_rows = HeadRows(qkv, s, 3, 2, bh);
  LoadTile<kMaxD>(q_rows, stride, first, s.seq, s.head_dim, q);
  // Row `row` of the tile's running softmax, held alike by its 4 threads (a quad of a warp).
  const int row = static_cast<int>(threadIdx.x) / 4, quarter = static_cast<int>(threadIdx.x) % 4;
  float row_max = -INFINITY, row_sum = 0.0f;
  float o[kPer][kMaxD / kSide] = {};
  // Keys [0, end) are visible to some row of the tile; every row sees key 0 (see Visible), so
  // row_max is finite from the first key tile on.
  const int64_t end = first + kTile < s.seq ? first + kTile : s.seq;
  for (int64_t k0 = 0; k0 < end; k0 += kTile) {
    __syncthreads();  // The previous key tile's k, v, p and row_factor are read.
    LoadTile<kMaxD>(k_rows, stride, k0, s.seq, s.head_dim, k);
    LoadTile<kMaxD>(v_rows, stride, k0, s.seq, s.head_dim, v);
    __syncthreads();
    float scores[kPer][kPer];
    TileScores<kMaxD>(q, k, scores);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int r = ty + kSide * i, c = tx + kSide * j;
        p[r * kScoreStride + c] =
            Visible(first + r, k0 + c, s.seq) ? scores[i][j] * scale : -INFINITY;
      }
    }
    __syncthreads();
    float* p_row = p + row * kScoreStride;
    float tile_max = -INFINITY;
    for (int c = quarter; c < kTile; c += 4) tile_max = fmaxf(tile_max, p_row[c]);
    const float new_max = fmaxf(row_max, QuadMax(tile_max));
    float tile_sum = 0.0f;
    for (int c = quarter; c < kTile; c += 4) {
      const float e = expf(p_row[c] - new_max);  // 0 where masked (-inf).
      p_row[c] = e;
      tile_sum += e;
    }
    const float factor = expf(row_max - new_max);  // 0 on the first key tile.
    row_sum = row_sum * factor + QuadSum(tile_sum);
    row_max = new_max;
    if (quarter == 0) row_factor[row] = factor;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const float f = row_factor[ty + kSide * i];
#pragma unroll
      for (int j = 0; j < kMaxD / kSide; ++j) o[i][j] *= f;
    }
    AccumulateProduct<kMaxD, false>(p, v, o);
  }
  __syncthreads();  // row_factor is read.
  if (quarter == 0) {
    row_factor[row] = 1.0f / row_sum;
    if (first + row < s.seq) lse[bh * s.seq + first + row] = row_max + logf(row_sum);
  }
  __syncthreads();
  float* out_rows = HeadRows(out, s, 1, 0, bh);
  // Each output row scaled by its 1 / row_sum: StoreTile's factor is per tile, so scale here.
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const float f = row_factor[ty + kSide * i];
#pragma unroll
    for (int j = 0; j < kMaxD / kSide; ++j) o[i][j] *= f;
  }
  StoreTile<kMaxD>(o, 1.0f, first, s.seq, s.head_dim, s.heads * s.head_dim, out_rows);
}

// delta[bh, t] = sum over d of dout[b, t, h D + d] * out[b, t, h D + d]: one warp per row, in
// WarpSum's fixed order.
constexpr int kDotRowsPerBlock = 8;

__global__ void RowDotKernel(const float* out, const float* dout, FlashShape s, float* delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kDotRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  if (row >= s.batch * s.heads * s.seq) return;  // The whole warp leaves together.
  const int64_t bh = row / s.seq, t = row % s.seq, c = s.heads * s.head_dim;
  const float* o = HeadRows(out, s, 1, 0, bh) + t * c;
  const float* g = HeadRows(dout, s, 1, 0, bh) + t * c;
  float sum = 0.0f;
  for (int64_t d = lane; d < s.head_dim; d += kWarpSize) sum = fmaf(o[d], g[d], sum);
  sum = WarpSum(sum);
  if (lane == 0) delta[row] = sum;
}

// This thread's entries of the probabilities (into p, when not null) and of dscores / scale =
// p (dp - delta) (into ds) of the tile of queries [q0, q0 + kTile) and keys [k0, k0 + kTile),
// from the q, k, dout and v tiles and the queries' lse and delta.
template <int kMaxD>
__device__ void ScoreGradients(const float* q, const float* k, const float* dout, const float* v,
                               const float* row_lse, const float* row_delta, int64_t q0, int64_t k0,
                               const FlashShape& s, float scale, float* p, float* ds) {
  const int ty = static_cast<int>(threadIdx.x) / kSide, tx = static_cast<int>(threadIdx.x) % kSide;
  float scores[kPer][kPer], dp[kPer][kPer];
  TileScores<kMaxD>(q, k, scores);
  TileScores<kMaxD>(dout, v, dp);
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int r = ty + kSide * i, c = tx + kSide * j;
      const float prob =
          Visible(q0 + r, k0 + c, s.seq) ? expf(scores[i][j] * scale - row_lse[r]) : 0.0f;
      if (p != nullptr) p[r * kScoreStride + c] = prob;
      ds[r * kScoreStride + c] = prob * (dp[i][j] - row_delta[r]);
    }
  }
}

// dq over query tiles. Shared memory: q, dout, k, v [kTile, kMaxD]; ds [kTile, kTile];
// row_lse, row_delta [kTile].
template <int kMaxD>
__global__ void __launch_bounds__(kThreads)
    FlashQueryGradKernel(const float* qkv, const float* dout, const float* lse, const float* delta,
                         FlashShape s, float scale, float* dqkv) {
  extern __shared__ float shared[];
  float* q = shared;
  float* g = q + kHeadTile<kMaxD>;  // dout
  float* k = g + kHeadTile<kMaxD>;
  float* v = k + kHeadTile<kMaxD>;
  float* ds = v + kHeadTile<kMaxD>;
  float* row_lse = ds + kScoreTile;
  float* row_delta = row_lse + kTile;
  const int64_t bh = FlashHead(s), first = LastTileFirst(s), c = s.heads * s.head_dim;
  const float* k_rows = HeadRows(qkv, s, 3, 1, bh);
  const float* v_rows = HeadRows(qkv, s, 3, 2, bh);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 0, bh), 3 * c, first, s.seq, s.head_dim, q);
  LoadTile<kMaxD>(HeadRows(dout, s, 1, 0, bh), c, first, s.seq, s.head_dim, g);
  LoadRowValues(lse + bh * s.seq, first, s.seq, row_lse);
  LoadRowValues(delta + bh * s.seq, first, s.seq, row_delta);
  float dq[kPer][kMaxD / kSide] = {};
  const int64_t end = first + kTile < s.seq ? first + kTile : s.seq;
  for (int64_t k0 = 0; k0 < end; k0 += kTile) {
    __syncthreads();  // The previous key tile's k and ds are read.
    LoadTile<kMaxD>(k_rows, 3 * c, k0, s.seq, s.head_dim, k);
    LoadTile<kMaxD>(v_rows, 3 * c, k0, s.seq, s.head_dim, v);
    __syncthreads();
    ScoreGradients<kMaxD>(q, k, g, v, row_lse, row_delta, first, k0, s, scale, nullptr, ds);
    __syncthreads();
    AccumulateProduct<kMaxD, false>(ds, k, dq);  // dq += ds k
  }
  StoreTile<kMaxD>(dq, scale, first, s.seq, s.head_dim, 3 * c, HeadRows(dqkv, s, 3, 0, bh));
}

// dk and dv over key tiles. Shared memory: k, v, q, dout [kTile, kMaxD]; p, ds [kTile, kTile];
// row_lse, row_delta [kTile].
template <int kMaxD>
__global__ void __launch_bounds__(kThreads)
    FlashKeyGradKernel(const float* qkv, const float* dout, const float* lse, const float* delta,
                       FlashShape s, float scale, float* dqkv) {
  extern __shared__ float shared[];
  float* k = shared;
  float* v = k + kHeadTile<kMaxD>;
  float* q = v + kHeadTile<kMaxD>;
  float* g = q + kHeadTile<kMaxD>;  // dout
  float* p = g + kHeadTile<kMaxD>;
  float* ds = p + kScoreTile;
  float* row_lse = ds + kScoreTile;
  float* row_delta = row_lse + kTile;
  // The first key tiles have the most work (every later query sees them): they start first.
  const int64_t bh = FlashHead(s), first = FirstTileFirst(s);
  const int64_t c = s.heads * s.head_dim;
  const float* q_rows = HeadRows(qkv, s, 3, 0, bh);
  const float* g_rows = HeadRows(dout, s, 1, 0, bh);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 1, bh), 3 * c, first, s.seq, s.head_dim, k);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 2, bh), 3 * c, first, s.seq, s.head_dim, v);
  float dk[kPer][kMaxD / kSide] = {}, dv[kPer][kMaxD / kSide] = {};
  // Query tiles before this key tile see none of its keys; tiles are aligned (both kTile).
  for (int64_t q0 = first; q0 < s.seq; q0 += kTile) {
    __syncthreads();  // The previous query tile's q, dout, p, ds and row values are read.
    LoadTile<kMaxD>(q_rows, 3 * c, q0, s.seq, s.head_dim, q);
    LoadTile<kMaxD>(g_rows, c, q0, s.seq, s.head_dim, g);
    LoadRowValues(lse + bh * s.seq, q0, s.seq, row_lse);
    LoadRowValues(delta + bh * s.seq, q0, s.seq, row_delta);
    __syncthreads();
    ScoreGradients<kMaxD>(q, k, g, v, row_lse, row_delta, q0, first, s, scale, p, ds);
    __syncthreads();
    AccumulateProduct<kMaxD, true>(p, g, dv);   // dv += p^T dout
    AccumulateProduct<kMaxD, true>(ds, q, dk);  // dk += ds^T q
  }
  StoreTile<kMaxD>(dk, scale, first, s.seq, s.head_dim, 3 * c, HeadRows(dqkv, s, 3, 1, bh));
  StoreTile<kMaxD>(dv, 1.0f, first, s.seq, s.head_dim, 3 * c, HeadRows(dqkv, s, 3, 2, bh));
}

template <int kMaxD>
cudaError_t Forward(const float* qkv, const FlashShape& s, float* out, float* lse,
                    cudaStream_t stream) {
  return LaunchFlashKernel(FlashForwardKernel<kMaxD>, kForwardBytes<kMaxD>, kThreads, s, stream,
                           qkv, s, FlashScale(s), out, lse);
}

template <int kMaxD>
cudaError_t Backward(const float* qkv, const float* dout, const float* lse, const float* delta,
                     const FlashShape& s, float* dqkv, cudaStream_t stream) {
  const cudaError_t err =
      LaunchFlashKernel(FlashQueryGradKernel<kMaxD>, kQueryGradBytes<kMaxD>, kThreads, s, stream,
                        qkv, dout, lse, delta, s, FlashScale(s), dqkv);
  if (err != cudaSuccess) return err;
  return LaunchFlashKernel(FlashKeyGradKernel<kMaxD>, kKeyGradBytes<kMaxD>, kThreads, s, stream,
                           qkv, dout, lse, delta, s, FlashScale(s), dqkv);
}

}  // namespace

cudaError_t LaunchFlashAttentionForward(const float* qkv, const FlashShape& shape, float* out,
                                        float* lse, cudaStream_t stream) {
  if (!ValidFlashShape(shape)) return cudaErrorInvalidValue;
  if (EmptyFlashShape(shape)) return cudaSuccess;
  if (shape.head_dim <= 32) return Forward<32>(qkv, shape, out, lse, stream);
  if (shape.head_dim <= 64) return Forward<64>(qkv, shape, out, lse, stream);
  return Forward<128>(qkv, shape, out, lse, stream);
}

int64_t FlashAttentionBackwardScratch(const FlashShape& shape) {
  return shape.batch * shape.heads * shape.seq;
}

cudaError_t LaunchFlashAttentionBackward(const float* qkv, const float* out, const float* dout,
                                         const float* lse, const FlashShape& shape, float* dqkv,
                                         float* scratch, cudaStream_t stream) {
  if (!ValidFlashShape(shape)) return cudaErrorInvalidValue;
  if (EmptyFlashShape(shape)) return cudaSuccess;
  float* delta = scratch;
  const int64_t rows = FlashAttentionBackwardScratch(shape);
  const auto blocks = static_cast<unsigned>((rows + kDotRowsPerBlock - 1) / kDotRowsPerBlock);
  RowDotKernel<<<blocks, kDotRowsPerBlock * kWarpSize, 0, stream>>>(out, dout, shape, delta);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  if (shape.head_dim <= 32) return Backward<32>(qkv, dout, lse, delta, shape, dqkv, stream);
  if (shape.head_dim <= 64) return Backward<64>(qkv, dout, lse, delta, shape, dqkv, stream);
  return Backward<128>(qkv, dout, lse, delta, shape, dqkv, stream);
}

}  // namespace usine::nn_internal::cuda
