// bf16 tensor-core flash attention kernels behind cuda_flash_attention_bf16.h.
//
// Every kernel works on one head and one tile of kTile rows (cuda_flash_tiles.cuh) with kWarps
// warps; warp w owns rows [16 w, 16 w + 16) of the tile (its strip) and computes, per tile of
// the other side, its [16, kTile] strip of scores (and of dout v^T) as wmma products from the
// bf16 tiles in shared memory, stores them to its f32 strip of shared memory, where its lanes
// apply the mask and the softmax, writes the probabilities (or score gradients) back as a bf16
// strip, and adds their product with the other side's tile into f32 accumulator fragments that
// stay in registers for the whole walk. Only the loads of the walked tiles are shared by the
// warps (__syncthreads); the rest is the warp's own (__syncwarp between the lanes' and the
// fragments' accesses to its strips). The head size D, a multiple of 16, is padded with zeros to
// kMaxD (32, 64 or 128) and rows past T are zeros too, as in the f32 kernels; 16-column or
// 16-row blocks that the causal mask hides from a whole strip are skipped.
//
// Softmax arithmetic is in units of log2: scores are scaled by log2(e) / sqrt(D) and
// exponentiated with exp2f; lse is converted back to natural logs when it is written.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <mma.h>

#include "runtime/nn/internal/cuda_flash_attention_bf16.h"
#include "runtime/nn/internal/cuda_flash_tiles.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using Bf16 = __nv_bfloat16;

constexpr int kTile = kFlashTile;
constexpr int kFrag = 16;              // The wmma shape: 16 x 16 x 16.
constexpr int kWarps = kTile / kFrag;  // One per 16-row strip of the tile.
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kBlocks = kTile / kFrag;  // 16-row (or 16-column) blocks of a tile.

using FragA = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, Bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, Bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, Bf16, wmma::col_major>;
using Acc = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float>;

// Row strides in shared memory, in elements. wmma wants multiples of 16 bytes and fragment
// origins 32-byte aligned (every array below is a multiple of 128 bytes, and the strips are 16
// rows apart); the 16 bytes of padding per row spread a column's rows over the banks.
template <int kMaxD>
constexpr int kHeadStride = kMaxD + 8;   // bf16 [kTile, kMaxD] tiles of q, k, v, dout.
constexpr int kProbStride = kTile + 8;   // bf16 [kTile, kTile] tiles of p and ds.
constexpr int kScoreStride = kTile + 4;  // f32 [kTile, kTile] tiles of scores and dp.
constexpr int kFactors = kFrag * kFrag;  // f32 [16, 16] per warp: a factor per row.

template <int kMaxD>
constexpr int kHeadBytes = kTile* kHeadStride<kMaxD> * sizeof(Bf16);
constexpr int kProbBytes = kTile * kProbStride * sizeof(Bf16);
constexpr int kScoreBytes = kTile * kScoreStride * sizeof(float);
constexpr int kFactorBytes = kWarps * kFactors * sizeof(float);
constexpr int kRowBytes = kTile * sizeof(float);

// Shared bytes per block of each kernel (see their layouts).
template <int kMaxD>
constexpr int kForwardBytes = 3 * kHeadBytes<kMaxD> + kProbBytes + kScoreBytes + kFactorBytes;
template <int kMaxD>
constexpr int kQueryGradBytes =
    4 * kHeadBytes<kMaxD> + kProbBytes + 2 * kScoreBytes + 2 * kRowBytes;
template <int kMaxD>
constexpr int kKeyGradBytes =
    4 * kHeadBytes<kMaxD> + 2 * kProbBytes + 2 * kScoreBytes + 2 * kRowBytes;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Consecutive arrays of the block's dynamic shared memory, in the order they are taken.
class SharedArrays {
 public:
  __device__ explicit SharedArrays(unsigned char* base) : next_(base) {}
  template <typename T>
  __device__ T* Take(int bytes) {
    T* array = reinterpret_cast<T*>(next_);
    next_ += bytes;
    return array;
  }

 private:
  unsigned char* next_;
};

__device__ inline int WarpIndex() { return static_cast<int>(threadIdx.x) / kWarpSize; }
__device__ inline int Lane() { return static_cast<int>(threadIdx.x) % kWarpSize; }

// An element of the kernels' f32 or bf16 arrays as f32 (exact), and an f32 result stored as one
// (bf16: rounded to nearest, ties to even).
__device__ inline float ToFloat(float x) { return x; }
__device__ inline float ToFloat(Bf16 x) { return __bfloat162float(x); }
__device__ inline void Store(float x, float* to) { *to = x; }
__device__ inline void Store(float x, Bf16* to) { *to = __float2bfloat16_rn(x); }

// tile[r][d] = bf16(rows[(first + r) * stride + d]) for first + r < seq and d < head_dim, else
// 0, 4 elements at a time: f32 rows rounded to bf16 here, bf16 rows copied as they are (the
// same bits as f32 rows that hold bf16 values). Called by every thread of the block. REQUIRES:
// rows and stride keep every group of 4 elements aligned to its size (16 bytes for f32, 8 for
// bf16); head_dim is a multiple of 4.
template <int kMaxD, typename TIn>
__device__ void LoadTile(const TIn* rows, int64_t stride, int64_t first, int64_t seq,
                         int64_t head_dim, Bf16* tile) {
  constexpr int kQuads = kMaxD / 4;
  for (int i = static_cast<int>(threadIdx.x); i < kTile * kQuads; i += kThreads) {
    const int r = i / kQuads, d = i % kQuads * 4;
    const int64_t t = first + r;
    const bool real = t < seq && d < head_dim;
    Bf16* to = tile + r * kHeadStride<kMaxD> + d;
    if constexpr (std::is_same_v<TIn, Bf16>) {
      uint2 x = make_uint2(0u, 0u);  // bf16 +0 is all zero bits.
      if (real) x = *reinterpret_cast<const uint2*>(rows + t * stride + d);
      *reinterpret_cast<uint2*>(to) = x;
    } else {
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (real) x = *reinterpret_cast<const float4*>(rows + t * stride + d);
      auto* pair = reinterpret_cast<__nv_bfloat162*>(to);
      pair[0] = __floats2bfloat162_rn(x.x, x.y);
      pair[1] = __floats2bfloat162_rn(x.z, x.w);
    }
  }
}

// acc = a b^T for [16, kMaxD] bf16 strips a and b (rows kHeadStride apart), summed over d in
// blocks of 16 in increasing order.
template <int kMaxD>
__device__ void StripProduct(const Bf16* a, const Bf16* b, Acc& acc) {
  wmma::fill_fragment(acc, 0.0f);
#pragma unroll
  for (int d = 0; d < kMaxD; d += kFrag) {
    FragA fa;
    FragBt fb;
    wmma::load_matrix_sync(fa, a + d, kHeadStride<kMaxD>);
    wmma::load_matrix_sync(fb, b + d, kHeadStride<kMaxD>);
    wmma::mma_sync(acc, fa, fb, acc);
  }
}

// acc[j] += a m[:, 16 j : 16 j + 16] for a [16, 16] bf16 block a (rows `lda` apart) and
// [16, kMaxD] bf16 rows m (kHeadStride apart): a strip's share of a product with a tile.
template <int kMaxD>
__device__ void AccumulateBlock(const Bf16* a, int lda, const Bf16* m, Acc (&acc)[kMaxD / kFrag]) {
  FragA fa;
  wmma::load_matrix_sync(fa, a, lda);
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) {
    FragB fb;
    wmma::load_matrix_sync(fb, m + j * kFrag, kHeadStride<kMaxD>);
    wmma::mma_sync(acc[j], fa, fb, acc[j]);
  }
}

// acc[j](r, c) *= factor of row r, for the warp's [16, 16] f32 `factors` whose row r holds that
// factor in every column. Which (row, column) an accumulator element holds is unspecified, but
// it is one mapping for every fragment of the type (CUDA's own samples compute alpha acc +
// beta c elementwise with c loaded from memory the same way), so the element of the fragment
// loaded from `factors` is its row's factor.
template <int kMaxD>
__device__ void ScaleRows(const float* factors, Acc (&acc)[kMaxD / kFrag]) {
  Acc f;
  wmma::load_matrix_sync(f, factors, kFrag, wmma::mem_row_major);
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) {
#pragma unroll
    for (int e = 0; e < f.num_elements; ++e) acc[j].x[e] *= f.x[e];
  }
}

template <int kMaxD>
__device__ void Scale(float factor, Acc (&acc)[kMaxD / kFrag]) {
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) {
#pragma unroll
    for (int e = 0; e < acc[j].num_elements; ++e) acc[j].x[e] *= factor;
  }
}

// Writes the warp's [16, kMaxD] f32 result `acc` to rows[(first + r) * stride + d] (f32, or
// rounded to bf16) for first + r < seq and d < head_dim, through its [16, kTile] f32 strip
// `staging` (rows kScoreStride apart), up to kTile columns at a time.
template <int kMaxD, typename T>
__device__ void StoreStrip(const Acc (&acc)[kMaxD / kFrag], float* staging, int64_t first,
                           int64_t seq, int64_t head_dim, int64_t stride, T* rows) {
  constexpr int kWidth = kMaxD < kTile ? kMaxD : kTile;
#pragma unroll
  for (int c0 = 0; c0 < kMaxD; c0 += kWidth) {
    __syncwarp();  // The lanes are done with `staging`.
#pragma unroll
    for (int j = 0; j < kWidth / kFrag; ++j) {
      wmma::store_matrix_sync(staging + j * kFrag, acc[c0 / kFrag + j], kScoreStride,
                              wmma::mem_row_major);
    }
    __syncwarp();
    for (int i = Lane(); i < kFrag * kWidth; i += kWarpSize) {
      const int r = i / kWidth, c = i % kWidth;
      const int64_t t = first + r, d = c0 + c;
      if (t < seq && d < head_dim) Store(staging[r * kScoreStride + c], rows + t * stride + d);
    }
  }
}

// The number of 16-key blocks of the key tile at k0 that hold a key some query <= last_query
// sees: keys below both last_query + 1 and seq. At least 1 for k0 <= last_query and k0 < seq.
__device__ inline int KeyBlocks(int64_t last_query, int64_t k0, int64_t seq) {
  const int64_t keys = (last_query + 1 < seq ? last_query + 1 : seq) - k0;
  const int64_t blocks = (keys + kFrag - 1) / kFrag;
  return blocks < kBlocks ? static_cast<int>(blocks) : kBlocks;
}

// Forward. Shared memory: q, k, v [kTile, kMaxD] bf16; p [kTile, kTile] bf16 (exp2(score -
// running max)); scores [kTile, kTile] f32 (in log2 units, masked), which also stage the
// output; factors [kWarps][16, 16] f32 (ScaleRows).
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashForwardKernel(const T* qkv, FlashShape s, float scale_log2, T* out, float* lse) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* q = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* k = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* v = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* p = arrays.Take<Bf16>(kProbBytes);
  float* scores = arrays.Take<float>(kScoreBytes);
  float* factors = arrays.Take<float>(kFactorBytes);
  const int warp = WarpIndex(), lane = Lane(), row0 = warp * kFrag;
  const int64_t bh = blockIdx.x, first = LastTileFirst(), stride = 3 * s.heads * s.head_dim;
  const T* k_rows = HeadRows(qkv, s, 3, 1, bh);
  const T* v_rows = HeadRows(qkv, s, 3, 2, bh);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 0, bh), stride, first, s.seq, s.head_dim, q);
  const Bf16* warp_q = q + row0 * kHeadStride<kMaxD>;
  Bf16* warp_p = p + row0 * kProbStride;
  float* warp_scores = scores + row0 * kScoreStride;
  float* warp_factors = factors + warp * kFactors;
  // Lanes 2 r and 2 r + 1 hold the running softmax of the strip's row r alike; each takes every
  // other column of the row.
  const int row = lane / 2, half = lane % 2;
  const int64_t t = first + row0 + row;
  float* score_row = warp_scores + row * kScoreStride;
  Bf16* prob_row = warp_p + row * kProbStride;
  float row_max = -INFINITY, row_sum = 0.0f;
  Acc o[kMaxD / kFrag];
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) wmma::fill_fragment(o[j], 0.0f);
  // Keys [0, end) are visible to some row of the tile; every row sees key 0 (see Visible), so
  // row_max is finite from the first key tile on.
  const int64_t end = first + kTile < s.seq ? first + kTile : s.seq;
  for (int64_t k0 = 0; k0 < end; k0 += kTile) {
    __syncthreads();  // Every warp is done with the previous key tile's k and v.
    LoadTile<kMaxD>(k_rows, stride, k0, s.seq, s.head_dim, k);
    LoadTile<kMaxD>(v_rows, stride, k0, s.seq, s.head_dim, v);
    __syncthreads();
    // Columns past `blocks` blocks are hidden from every row of the strip: not computed, and
    // masked below without being read.
    const int blocks = KeyBlocks(first + row0 + kFrag - 1, k0, s.seq);
    for (int j = 0; j < blocks; ++j) {
      Acc acc;
      StripProduct<kMaxD>(warp_q, k + j * kFrag * kHeadStride<kMaxD>, acc);
      wmma::store_matrix_sync(warp_scores + j * kFrag, acc, kScoreStride, wmma::mem_row_major);
    }
    __syncwarp();
    float tile_max = -INFINITY;
    for (int c = half; c < kTile; c += 2) {
      const float x = Visible(t, k0 + c, s.seq) ? score_row[c] * scale_log2 : -INFINITY;
      score_row[c] = x;
      tile_max = fmaxf(tile_max, x);
    }
    const float new_max = fmaxf(row_max, fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, 1)));
    float tile_sum = 0.0f;
    for (int c = half; c < kTile; c += 2) {
      const float e = exp2f(score_row[c] - new_max);  // 0 where masked (-inf).
      prob_row[c] = __float2bfloat16_rn(e);
      tile_sum += e;
    }
    // Both lanes add the same two values: the same bits in each.
    tile_sum = __fadd_rn(tile_sum, __shfl_xor_sync(kFullMask, tile_sum, 1));
    const float factor = exp2f(row_max - new_max);  // 0 on the first key tile.
    row_sum = row_sum * factor + tile_sum;
    row_max = new_max;
    for (int c = half; c < kFrag; c += 2) warp_factors[row * kFrag + c] = factor;
    __syncwarp();
    ScaleRows<kMaxD>(warp_factors, o);
    // p's columns past `blocks` blocks are 0.
    for (int j = 0; j < blocks; ++j) {
      AccumulateBlock<kMaxD>(warp_p + j * kFrag, kProbStride, v + j * kFrag * kHeadStride<kMaxD>,
                             o);
    }
  }
  __syncwarp();  // The lanes are done with warp_factors.
  for (int c = half; c < kFrag; c += 2) warp_factors[row * kFrag + c] = 1.0f / row_sum;
  if (half == 0 && t < s.seq) lse[bh * s.seq + t] = (row_max + log2f(row_sum)) * kLn2;
  __syncwarp();
  ScaleRows<kMaxD>(warp_factors, o);
  StoreStrip<kMaxD>(o, warp_scores, first + row0, s.seq, s.head_dim, s.heads * s.head_dim,
                    HeadRows(out, s, 1, 0, bh));
}

// dq over query tiles; also writes delta[bh, t] = sum over d of out dout (dout in bf16) for the
// dk, dv kernel.
// Shared memory: q, dout, k, v [kTile, kMaxD] bf16; ds [kTile, kTile] bf16; scores, dp
// [kTile, kTile] f32 (scores also stage dq); row_lse (in log2 units), row_delta [kTile] f32.
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashQueryGradKernel(const T* qkv, const T* out, const T* dout, const float* lse,
                             FlashShape s, float scale, float scale_log2, float* delta, T* dqkv) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* q = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* g = arrays.Take<Bf16>(kHeadBytes<kMaxD>);  // dout
  Bf16* k = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* v = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* ds = arrays.Take<Bf16>(kProbBytes);
  float* scores = arrays.Take<float>(kScoreBytes);
  float* dp = arrays.Take<float>(kScoreBytes);
  float* row_lse = arrays.Take<float>(kRowBytes);
  float* row_delta = arrays.Take<float>(kRowBytes);
  const int warp = WarpIndex(), lane = Lane(), row0 = warp * kFrag;
  const int64_t bh = blockIdx.x, first = LastTileFirst(), c = s.heads * s.head_dim;
  const T* k_rows = HeadRows(qkv, s, 3, 1, bh);
  const T* v_rows = HeadRows(qkv, s, 3, 2, bh);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 0, bh), 3 * c, first, s.seq, s.head_dim, q);
  LoadTile<kMaxD>(HeadRows(dout, s, 1, 0, bh), c, first, s.seq, s.head_dim, g);
  __syncthreads();  // g is loaded.
  // The strip's rows' lse and delta, a row at a time over the warp's lanes in WarpSum's fixed
  // order; 0 past the sequence. delta is the sum of out times dout as rounded to bf16, as dp
  // has it: then ds = p (dp - delta) sums to 0 over a row up to the rounding of out (f32, or
  // bf16 when the arrays are, as in FlashAttention-2) and of f32, as the exact gradient does,
  // where delta from the f32 dout would leave dout's rounding in each ds.
  const T* o_rows = HeadRows(out, s, 1, 0, bh);
  for (int r = row0; r < row0 + kFrag; ++r) {
    const int64_t t = first + r;
    float dot = 0.0f;
    if (t < s.seq) {
      for (int d = lane; d < s.head_dim; d += kWarpSize) {
        dot =
            fmaf(ToFloat(o_rows[t * c + d]), __bfloat162float(g[r * kHeadStride<kMaxD> + d]), dot);
      }
    }
    dot = WarpSum(dot);
    if (lane == 0) {
      row_delta[r] = dot;
      row_lse[r] = t < s.seq ? lse[bh * s.seq + t] * kLog2e : 0.0f;
      if (t < s.seq) delta[bh * s.seq + t] = dot;
    }
  }
  const Bf16* warp_q = q + row0 * kHeadStride<kMaxD>;
  const Bf16* warp_g = g + row0 * kHeadStride<kMaxD>;
  Bf16* warp_ds = ds + row0 * kProbStride;
  float* warp_scores = scores + row0 * kScoreStride;
  float* warp_dp = dp + row0 * kScoreStride;
  Acc dq[kMaxD / kFrag];
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) wmma::fill_fragment(dq[j], 0.0f);
  const int64_t end = first + kTile < s.seq ? first + kTile : s.seq;
  for (int64_t k0 = 0; k0 < end; k0 += kTile) {
    __syncthreads();  // Every warp is done with the previous key tile's k and v.
    LoadTile<kMaxD>(k_rows, 3 * c, k0, s.seq, s.head_dim, k);
    LoadTile<kMaxD>(v_rows, 3 * c, k0, s.seq, s.head_dim, v);
    __syncthreads();
    const int blocks = KeyBlocks(first + row0 + kFrag - 1, k0, s.seq);
    for (int j = 0; j < blocks; ++j) {
      Acc acc;
      StripProduct<kMaxD>(warp_q, k + j * kFrag * kHeadStride<kMaxD>, acc);
      wmma::store_matrix_sync(warp_scores + j * kFrag, acc, kScoreStride, wmma::mem_row_major);
      StripProduct<kMaxD>(warp_g, v + j * kFrag * kHeadStride<kMaxD>, acc);
      wmma::store_matrix_sync(warp_dp + j * kFrag, acc, kScoreStride, wmma::mem_row_major);
    }
    __syncwarp();
    // ds / scale = p (dp - delta), p = exp2(score - lse) where the query (real) sees the key.
    const int width = blocks * kFrag;
    for (int i = lane; i < kFrag * width; i += kWarpSize) {
      const int r = i / width, col = i % width;
      const int64_t t = first + row0 + r, key = k0 + col;
      const float prob =
          key <= t && t < s.seq
              ? exp2f(fmaf(warp_scores[r * kScoreStride + col], scale_log2, -row_lse[row0 + r]))
              : 0.0f;
      warp_ds[r * kProbStride + col] =
          __float2bfloat16_rn(prob * (warp_dp[r * kScoreStride + col] - row_delta[row0 + r]));
    }
    __syncwarp();
    for (int j = 0; j < blocks; ++j) {  // dq += ds k
      AccumulateBlock<kMaxD>(warp_ds + j * kFrag, kProbStride, k + j * kFrag * kHeadStride<kMaxD>,
                             dq);
    }
  }
  Scale<kMaxD>(scale, dq);
  StoreStrip<kMaxD>(dq, warp_scores, first + row0, s.seq, s.head_dim, 3 * c,
                    HeadRows(dqkv, s, 3, 0, bh));
}

// dk and dv over key tiles: each warp's strip holds 16 keys, and its scores and probabilities
// are those of the tile transposed ([key, query]). Shared memory: k, v, q, dout [kTile, kMaxD]
// bf16; p, ds [kTile, kTile] bf16; scores, dp [kTile, kTile] f32 (scores also stage dk and dv);
// row_lse (in log2 units), row_delta [kTile] f32, of the query tile.
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashKeyGradKernel(const T* qkv, const T* dout, const float* lse, const float* delta,
                           FlashShape s, float scale, float scale_log2, T* dqkv) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* k = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* v = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* q = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* g = arrays.Take<Bf16>(kHeadBytes<kMaxD>);  // dout
  Bf16* p = arrays.Take<Bf16>(kProbBytes);
  Bf16* ds = arrays.Take<Bf16>(kProbBytes);
  float* scores = arrays.Take<float>(kScoreBytes);
  float* dp = arrays.Take<float>(kScoreBytes);
  float* row_lse = arrays.Take<float>(kRowBytes);
  float* row_delta = arrays.Take<float>(kRowBytes);
  const int warp = WarpIndex(), lane = Lane(), row0 = warp * kFrag;
  // The first key tiles have the most work (every later query sees them): they start first.
  const int64_t bh = blockIdx.x, first = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t c = s.heads * s.head_dim;
  const T* q_rows = HeadRows(qkv, s, 3, 0, bh);
  const T* g_rows = HeadRows(dout, s, 1, 0, bh);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 1, bh), 3 * c, first, s.seq, s.head_dim, k);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 2, bh), 3 * c, first, s.seq, s.head_dim, v);
  const Bf16* warp_k = k + row0 * kHeadStride<kMaxD>;
  const Bf16* warp_v = v + row0 * kHeadStride<kMaxD>;
  Bf16* warp_p = p + row0 * kProbStride;
  Bf16* warp_ds = ds + row0 * kProbStride;
  float* warp_scores = scores + row0 * kScoreStride;
  float* warp_dp = dp + row0 * kScoreStride;
  Acc dk[kMaxD / kFrag], dv[kMaxD / kFrag];
#pragma unroll
  for (int j = 0; j < kMaxD / kFrag; ++j) {
    wmma::fill_fragment(dk[j], 0.0f);
    wmma::fill_fragment(dv[j], 0.0f);
  }
  // Query tiles before this key tile see none of its keys; tiles are aligned (both kTile).
  for (int64_t q0 = first; q0 < s.seq; q0 += kTile) {
    __syncthreads();  // Every warp is done with the previous query tile's q, dout and rows.
    LoadTile<kMaxD>(q_rows, 3 * c, q0, s.seq, s.head_dim, q);
    LoadTile<kMaxD>(g_rows, c, q0, s.seq, s.head_dim, g);
    for (int r = static_cast<int>(threadIdx.x); r < kTile; r += kThreads) {
      const int64_t t = q0 + r;
      row_lse[r] = t < s.seq ? lse[bh * s.seq + t] * kLog2e : 0.0f;
      row_delta[r] = t < s.seq ? delta[bh * s.seq + t] : 0.0f;
    }
    __syncthreads();
    // The 16-query blocks [j0, j1) hold real queries that see some key of the strip: on the
    // diagonal tile the blocks before the strip's own see none.
    const int j0 = q0 == first ? warp : 0;
    const int64_t real_blocks = (s.seq - q0 + kFrag - 1) / kFrag;
    const int j1 = real_blocks < kBlocks ? static_cast<int>(real_blocks) : kBlocks;
    for (int j = j0; j < j1; ++j) {
      Acc acc;
      StripProduct<kMaxD>(warp_k, q + j * kFrag * kHeadStride<kMaxD>, acc);
      wmma::store_matrix_sync(warp_scores + j * kFrag, acc, kScoreStride, wmma::mem_row_major);
      StripProduct<kMaxD>(warp_v, g + j * kFrag * kHeadStride<kMaxD>, acc);
      wmma::store_matrix_sync(warp_dp + j * kFrag, acc, kScoreStride, wmma::mem_row_major);
    }
    __syncwarp();
    // p and ds / scale = p (dp - delta), transposed, over the columns of blocks [j0, j1).
    const int width = (j1 - j0) * kFrag;
    for (int i = lane; i < kFrag * width; i += kWarpSize) {
      const int r = i / width, col = j0 * kFrag + i % width;
      const int64_t key = first + row0 + r, t = q0 + col;
      const float prob =
          key <= t && t < s.seq
              ? exp2f(fmaf(warp_scores[r * kScoreStride + col], scale_log2, -row_lse[col]))
              : 0.0f;
      warp_p[r * kProbStride + col] = __float2bfloat16_rn(prob);
      warp_ds[r * kProbStride + col] =
          __float2bfloat16_rn(prob * (warp_dp[r * kScoreStride + col] - row_delta[col]));
    }
    __syncwarp();
    for (int j = j0; j < j1; ++j) {  // dv += p^T dout; dk += ds^T q
      AccumulateBlock<kMaxD>(warp_p + j * kFrag, kProbStride, g + j * kFrag * kHeadStride<kMaxD>,
                             dv);
      AccumulateBlock<kMaxD>(warp_ds + j * kFrag, kProbStride, q + j * kFrag * kHeadStride<kMaxD>,
                             dk);
    }
  }
  Scale<kMaxD>(scale, dk);
  StoreStrip<kMaxD>(dk, warp_scores, first + row0, s.seq, s.head_dim, 3 * c,
                    HeadRows(dqkv, s, 3, 1, bh));
  StoreStrip<kMaxD>(dv, warp_scores, first + row0, s.seq, s.head_dim, 3 * c,
                    HeadRows(dqkv, s, 3, 2, bh));
}

// The scores' scale in units of log2: log2(e) / sqrt(D).
float ScaleLog2(const FlashShape& s) { return FlashScale(s) * kLog2e; }

template <int kMaxD, typename T>
cudaError_t Forward(const T* qkv, const FlashShape& s, T* out, float* lse, cudaStream_t stream) {
  return LaunchFlashKernel(Bf16FlashForwardKernel<kMaxD, T>, kForwardBytes<kMaxD>, kThreads, s,
                           stream, qkv, s, ScaleLog2(s), out, lse);
}

template <int kMaxD, typename T>
cudaError_t Backward(const T* qkv, const T* out, const T* dout, const float* lse,
                     const FlashShape& s, T* dqkv, float* delta, cudaStream_t stream) {
  const cudaError_t err =
      LaunchFlashKernel(Bf16FlashQueryGradKernel<kMaxD, T>, kQueryGradBytes<kMaxD>, kThreads, s,
                        stream, qkv, out, dout, lse, s, FlashScale(s), ScaleLog2(s), delta, dqkv);
  if (err != cudaSuccess) return err;
  return LaunchFlashKernel(Bf16FlashKeyGradKernel<kMaxD, T>, kKeyGradBytes<kMaxD>, kThreads, s,
                           stream, qkv, dout, lse, delta, s, FlashScale(s), ScaleLog2(s), dqkv);
}

bool AlignedTo(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Bf16FlashAttentionTakes: qkv and dout aligned to 4 of their elements.
template <typename T>
bool Takes(const FlashShape& shape, const T* qkv, const T* dout) {
  return shape.head_dim >= kFrag && shape.head_dim <= kFlashMaxHeadDim &&
         shape.head_dim % kFrag == 0 && AlignedTo(qkv, 4 * sizeof(T)) &&
         (dout == nullptr || AlignedTo(dout, 4 * sizeof(T)));
}

template <typename T>
cudaError_t LaunchForward(const T* qkv, const FlashShape& shape, T* out, float* lse,
                          cudaStream_t stream) {
  if (!ValidFlashShape(shape) || !Takes(shape, qkv, static_cast<const T*>(nullptr))) {
    return cudaErrorInvalidValue;
  }
  if (EmptyFlashShape(shape)) return cudaSuccess;
  if (shape.head_dim <= 32) return Forward<32>(qkv, shape, out, lse, stream);
  if (shape.head_dim <= 64) return Forward<64>(qkv, shape, out, lse, stream);
  return Forward<128>(qkv, shape, out, lse, stream);
}

template <typename T>
cudaError_t LaunchBackward(const T* qkv, const T* out, const T* dout, const float* lse,
                           const FlashShape& shape, T* dqkv, float* scratch, cudaStream_t stream) {
  if (!ValidFlashShape(shape) || !Takes(shape, qkv, dout)) {
    return cudaErrorInvalidValue;
  }
  if (EmptyFlashShape(shape)) return cudaSuccess;
  if (shape.head_dim <= 32) return Backward<32>(qkv, out, dout, lse, shape, dqkv, scratch, stream);
  if (shape.head_dim <= 64) return Backward<64>(qkv, out, dout, lse, shape, dqkv, scratch, stream);
  return Backward<128>(qkv, out, dout, lse, shape, dqkv, scratch, stream);
}

const Bf16* AsBf16(const BFloat16* p) { return reinterpret_cast<const Bf16*>(p); }
Bf16* AsBf16(BFloat16* p) { return reinterpret_cast<Bf16*>(p); }

}  // namespace

bool Bf16FlashAttentionTakes(const FlashShape& shape, const float* qkv, const float* dout) {
  return Takes(shape, qkv, dout);
}

bool Bf16FlashAttentionTakes(const FlashShape& shape, const BFloat16* qkv, const BFloat16* dout) {
  return Takes(shape, AsBf16(qkv), AsBf16(dout));
}

cudaError_t LaunchBf16FlashAttentionForward(const float* qkv, const FlashShape& shape, float* out,
                                            float* lse, cudaStream_t stream) {
  return LaunchForward(qkv, shape, out, lse, stream);
}

cudaError_t LaunchBf16FlashAttentionForward(const BFloat16* qkv, const FlashShape& shape,
                                            BFloat16* out, float* lse, cudaStream_t stream) {
  return LaunchForward(AsBf16(qkv), shape, AsBf16(out), lse, stream);
}

cudaError_t LaunchBf16FlashAttentionBackward(const float* qkv, const float* out, const float* dout,
                                             const float* lse, const FlashShape& shape, float* dqkv,
                                             float* scratch, cudaStream_t stream) {
  return LaunchBackward(qkv, out, dout, lse, shape, dqkv, scratch, stream);
}

cudaError_t LaunchBf16FlashAttentionBackward(const BFloat16* qkv, const BFloat16* out,
                                             const BFloat16* dout, const float* lse,
                                             const FlashShape& shape, BFloat16* dqkv,
                                             float* scratch, cudaStream_t stream) {
  return LaunchBackward(AsBf16(qkv), AsBf16(out), AsBf16(dout), lse, shape, AsBf16(dqkv), scratch,
                        stream);
}

}  // namespace usine::nn_internal::cuda
