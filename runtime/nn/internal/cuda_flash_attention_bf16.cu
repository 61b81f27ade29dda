// bf16 tensor-core flash attention kernels behind cuda_flash_attention_bf16.h.
//
// Every kernel works on one head and one tile of kTile rows (cuda_flash_tiles.cuh) with kWarps
// warps; warp w owns rows [16 w, 16 w + 16) of the tile (its strip) and walks the other side's
// tiles. For each, it computes its [16, kTile] strip of scores (and of dout v^T) as mma.sync
// m16n8k16 products (cuda_mma.cuh) whose f32 accumulators stay in registers: each lane holds
// rows g = lane / 4 and g + 8 of the strip, columns 8 n + 2 (lane % 4) and the next, for every
// 8-column block n. The lanes apply the mask and the softmax there (a row's four lanes combine
// their maxima and sums by shuffles), round the probabilities (or score gradients) to bf16 as
// the A operand of the next product, and add that product with the other side's tile into f32
// accumulators that stay in registers for the whole walk. The walked tiles are shared by the
// warps in shared memory, double-buffered, with one barrier per tile: after it, for bf16 arrays
// the next tile's copy (cp.async) is under way while the current one is used; f32 arrays are
// read and rounded before the current tile's products. The head size D, a multiple of 16, is padded
// with zeros to kMaxD (32, 64 or 128) and rows past T are zeros too, as in the f32 kernels;
// 16-column or 16-row blocks that the causal mask hides from a whole strip are skipped.
//
// Softmax arithmetic is in units of log2: scores are scaled by log2(e) / sqrt(D) and
// exponentiated with exp2f; lse is converted back to natural logs when it is written.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>

#include "runtime/nn/internal/cuda_flash_attention_bf16.h"
#include "runtime/nn/internal/cuda_flash_tiles.cuh"
#include "runtime/nn/internal/cuda_mma.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

using Bf16 = __nv_bfloat16;

constexpr int kTile = kFlashTile;
constexpr int kStrip = 16;              // Rows per warp: the products' M.
constexpr int kWarps = kTile / kStrip;  // One per strip of the tile.
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kBlock = 16;  // The products' K: 16-row (or 16-column) blocks.
constexpr int kBlocks = kTile / kBlock;
constexpr int kColumns = 8;  // The products' N: 8-column blocks of an accumulator.
constexpr int kScoreBlocks = kTile / kColumns;

// A warp's [16, kTile] f32 strip of scores, and its [16, kMaxD] f32 result, as accumulators.
using ScoreStrip = float[kScoreBlocks][4];
template <int kMaxD>
using ResultStrip = float[kMaxD / kColumns][4];

// Row stride of the bf16 [kTile, kMaxD] tiles of q, k, v and dout in shared memory, in
// elements: 16 bytes of padding per row put the 8 rows that an ldmatrix matrix reads in 8
// different 16-byte bank groups, and keep every row 16-byte aligned (cp.async, ldmatrix).
template <int kMaxD>
constexpr int kHeadStride = kMaxD + 8;
template <int kMaxD>
constexpr int kTileElements = (kTile * kHeadStride<kMaxD>);
template <int kMaxD>
constexpr int kHeadBytes = kTileElements<kMaxD> * sizeof(Bf16);
constexpr int kRowBytes = kTile * sizeof(float);

// Shared bytes per block of each kernel (see their layouts).
template <int kMaxD>
constexpr int kForwardBytes = 5 * kHeadBytes<kMaxD>;
template <int kMaxD>
constexpr int kQueryGradBytes = 6 * kHeadBytes<kMaxD> + 2 * kRowBytes;
template <int kMaxD>
constexpr int kKeyGradBytes = 6 * kHeadBytes<kMaxD> + 4 * kRowBytes;

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

// The strip row (0 to 15) and column (0 to kTile - 1) of element e of accumulator block n for
// this lane (cuda_mma.cuh's C layout).
__device__ inline int StripRow(int e) { return Lane() / 4 + 8 * (e / 2); }
__device__ inline int StripColumn(int n, int e) { return kColumns * n + 2 * (Lane() % 4) + e % 2; }

// An element of the kernels' f32 or bf16 arrays as f32 (exact), and two f32 results stored as
// two consecutive elements (bf16: each rounded to nearest, ties to even).
__device__ inline float ToFloat(float x) { return x; }
__device__ inline float ToFloat(Bf16 x) { return __bfloat162float(x); }
__device__ inline void StorePair(float x, float y, float* to) {
  *reinterpret_cast<float2*>(to) = make_float2(x, y);
}
__device__ inline void StorePair(float x, float y, Bf16* to) {
  *reinterpret_cast<__nv_bfloat162*>(to) = __floats2bfloat162_rn(x, y);
}

// Starts filling tile[r][d] with bf16(rows[(first + r) * stride + d]) for first + r < seq and d
// < head_dim, else 0: bf16 rows by cp.async, 8 elements at a time (complete once a
// CpAsyncWait covers the calling threads' next CpAsyncCommit, then a __syncthreads()); f32 rows
// rounded to bf16 here, 4 elements at a time, the same bits as bf16 rows holding the rounded
// values. Called by every thread of the block. REQUIRES: rows and stride keep every group of 8
// (bf16) or 4 (f32) elements 16-byte aligned; head_dim is a multiple of 8.
template <int kMaxD, typename TIn>
__device__ void LoadTile(const TIn* rows, int64_t stride, int64_t first, int64_t seq,
                         int64_t head_dim, Bf16* tile) {
  constexpr int kWidth = 16 / sizeof(TIn);
  constexpr int kGroups = kMaxD / kWidth;
  for (int i = static_cast<int>(threadIdx.x); i < kTile * kGroups; i += kThreads) {
    const int r = i / kGroups, d = i % kGroups * kWidth;
    const int64_t t = first + r;
    const bool real = t < seq && d < head_dim;
    Bf16* to = tile + r * kHeadStride<kMaxD> + d;
    if constexpr (std::is_same_v<TIn, Bf16>) {
      CpAsync16(to, real ? rows + t * stride + d : rows, !real);
    } else {
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (real) x = *reinterpret_cast<const float4*>(rows + t * stride + d);
      *reinterpret_cast<uint2*>(to) = make_uint2(PackBf16(x.x, x.y), PackBf16(x.z, x.w));
    }
  }
}

// A warp's [16, kMaxD] bf16 strip in shared memory (rows kHeadStride apart), as the A
// fragments of its blocks of 16 columns: each loaded when a product asks for it.
template <int kMaxD>
class SharedStrip {
 public:
  __device__ explicit SharedStrip(const Bf16* rows) : rows_(rows) {}
  // The fragment of columns [d0, d0 + 16).
  __device__ void Fragment(int d0, uint32_t (&fa)[4]) const {
    LdMatrixX4(rows_ + (Lane() % 16) * kHeadStride<kMaxD> + d0 + Lane() / 16 * 8, fa);
  }

 private:
  const Bf16* rows_;
};

// The same strip's fragments, all loaded into registers at construction, for a kernel that
// multiplies the strip with every tile it walks. REQUIRES: the strip is in shared memory then.
template <int kMaxD>
class HeldStrip {
 public:
  __device__ explicit HeldStrip(const Bf16* rows) {
    const SharedStrip<kMaxD> strip(rows);
#pragma unroll
    for (int d0 = 0; d0 < kMaxD; d0 += kBlock) strip.Fragment(d0, fragments_[d0 / kBlock]);
  }
  __device__ void Fragment(int d0, uint32_t (&fa)[4]) const {
#pragma unroll
    for (int e = 0; e < 4; ++e) fa[e] = fragments_[d0 / kBlock][e];
  }

 private:
  uint32_t fragments_[kMaxD / kBlock][4];
};

// s = a b^T over the 16-row blocks [j0, j1) of b, for the warp's [16, kMaxD] strip a (a
// SharedStrip or a HeldStrip) and a [kTile, kMaxD] tile b (bf16, rows kHeadStride apart): s's
// blocks 2 j and 2 j + 1 hold columns [16 j, 16 j + 16), summed over d in blocks of 16 in
// increasing order; the other blocks are 0. j0 and j1 are the same in every lane.
template <int kMaxD, typename Strip>
__device__ void StripTimesTileT(const Strip& a, const Bf16* b, int j0, int j1, ScoreStrip& s) {
  const int lane = Lane();
#pragma unroll
  for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
  }
#pragma unroll
  for (int d0 = 0; d0 < kMaxD; d0 += kBlock) {
    uint32_t fa[4];
    a.Fragment(d0, fa);
#pragma unroll
    for (int j = 0; j < kBlocks; ++j) {
      if (j < j0 || j >= j1) continue;
      // Matrices: rows 16 j + [0, 8) of b at columns d0 + [0, 8) and d0 + [8, 16), then rows
      // 16 j + [8, 16) at both: the B fragments (b[0], b[1]) of s's block 2 j, then 2 j + 1.
      uint32_t fb[4];
      LdMatrixX4(
          b + (kBlock * j + lane % 8 + lane / 16 * 8) * kHeadStride<kMaxD> + d0 + lane / 8 % 2 * 8,
          fb);
      Mma(fa, fb[0], fb[1], s[2 * j]);
      Mma(fa, fb[2], fb[3], s[2 * j + 1]);
    }
  }
}

// acc += p b over the 16-column blocks [j0, j1) of p, for the warp's [16, kTile] strip p
// (rounded to bf16 here) and a bf16 [kTile, kMaxD] tile b (rows kHeadStride apart), in
// increasing j. j0 and j1 are the same in every lane.
template <int kMaxD>
__device__ void AccumulateStripTimesTile(const ScoreStrip& p, const Bf16* b, int j0, int j1,
                                         ResultStrip<kMaxD>& acc) {
  const int lane = Lane();
#pragma unroll
  for (int j = 0; j < kBlocks; ++j) {
    if (j < j0 || j >= j1) continue;
    const uint32_t fa[4] = {PackBf16(p[2 * j][0], p[2 * j][1]), PackBf16(p[2 * j][2], p[2 * j][3]),
                            PackBf16(p[2 * j + 1][0], p[2 * j + 1][1]),
                            PackBf16(p[2 * j + 1][2], p[2 * j + 1][3])};
#pragma unroll
    for (int d0 = 0; d0 < kMaxD; d0 += kBlock) {
      // Matrices, transposed: rows 16 j + [0, 8) and 16 j + [8, 16) of b at columns d0 + [0, 8),
      // then both at d0 + [8, 16): the B fragments of acc's block d0 / 8, then d0 / 8 + 1.
      uint32_t fb[4];
      LdMatrixX4Trans(
          b + (kBlock * j + lane % 8 + lane / 8 % 2 * 8) * kHeadStride<kMaxD> + d0 + lane / 16 * 8,
          fb);
      Mma(fa, fb[0], fb[1], acc[d0 / kColumns]);
      Mma(fa, fb[2], fb[3], acc[d0 / kColumns + 1]);
    }
  }
}

// Writes row_scale[h] acc(r, d) for the lane's strip rows r (h = r / 8, see StripRow) to
// rows[(first + r) * stride + d] (f32, or rounded to bf16) for first + r < seq and d <
// head_dim. REQUIRES: rows and stride keep pairs of elements aligned to their size.
template <int kMaxD, typename T>
__device__ void StoreStrip(const ResultStrip<kMaxD>& acc, const float (&row_scale)[2],
                           int64_t first, int64_t seq, int64_t head_dim, int64_t stride, T* rows) {
#pragma unroll
  for (int n = 0; n < kMaxD / kColumns; ++n) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t t = first + StripRow(2 * h), d = StripColumn(n, 0);
      if (t < seq && d < head_dim) {
        StorePair(acc[n][2 * h] * row_scale[h], acc[n][2 * h + 1] * row_scale[h],
                  rows + t * stride + d);
      }
    }
  }
}

// The number of 16-key blocks of the key tile at k0 that hold a key some query <= last_query
// sees: keys below both last_query + 1 and seq. At least 1 for k0 <= last_query and k0 < seq.
__device__ inline int KeyBlocks(int64_t last_query, int64_t k0, int64_t seq) {
  const int64_t keys = (last_query + 1 < seq ? last_query + 1 : seq) - k0;
  const int64_t blocks = (keys + kBlock - 1) / kBlock;
  return blocks < kBlocks ? static_cast<int>(blocks) : kBlocks;
}

// Sets the lane's elements of the score strip s to -inf where hidden(strip row, tile column):
// their exp2 is 0. The kernels call it only for the tiles where some key is hidden from some
// row (the causal diagonal, the sequence's end); elsewhere their blocks are all computed.
template <typename Hidden>
__device__ void Hide(Hidden hidden, ScoreStrip& s) {
#pragma unroll
  for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (hidden(StripRow(e), StripColumn(n, e))) s[n][e] = -INFINITY;
    }
  }
}

// Waits for the calling thread's copies (all of its committed groups), then for the whole
// block: the copies are visible to every thread, and every warp is done with what it read
// before (the last tile, whose buffer the next copy then refills). One barrier per tile: the
// kernels start the next tile's copy after it, so it runs while the current tile is used.
__device__ inline void AwaitTile() {
  CpAsyncWait<0>();
  __syncthreads();
}

// The forward and dq kernels' key tiles for the query tile at `first`: k and v [kTile, kMaxD]
// bf16, twice in shared memory (taken from `arrays`), key tile kt in buffer kt % 2, so that the
// next tile is copied while the current one is used. Keys [0, end) are visible to some query of
// the tile, end = min(first + kTile, T).
//
//   keys.Load(0);
//   for (int64_t kt = 0; kt < keys.tiles(); ++kt) {
//     keys.AwaitAndLoadNext(kt);  // the one barrier of the iteration
//     ... read keys.k(kt), keys.v(kt) ...
//   }
template <int kMaxD, typename T>
class KeyTiles {
 public:
  __device__ KeyTiles(SharedArrays& arrays, const T* qkv, const FlashShape& s, int64_t bh,
                      int64_t first)
      : tiles_(((first + kTile < s.seq ? first + kTile : s.seq) + kTile - 1) / kTile),
        k_(arrays.Take<Bf16>(2 * kHeadBytes<kMaxD>)),
        v_(arrays.Take<Bf16>(2 * kHeadBytes<kMaxD>)),
        k_rows_(HeadRows(qkv, s, 3, 1, bh)),
        v_rows_(HeadRows(qkv, s, 3, 2, bh)),
        stride_(3 * s.heads * s.head_dim),
        seq_(s.seq),
        head_dim_(s.head_dim) {}

  // Starts filling key tile kt's buffer (LoadTile), then commits the calling thread's copies.
  // Called by every thread of the block.
  __device__ void Load(int64_t kt) {
    LoadTile<kMaxD>(k_rows_, stride_, kt * kTile, seq_, head_dim_, k(kt));
    LoadTile<kMaxD>(v_rows_, stride_, kt * kTile, seq_, head_dim_, v(kt));
    CpAsyncCommit();
  }

  // Waits until tile kt (whose copy was started before) is in shared memory for the whole
  // block and every warp is done with tile kt - 1, then starts the copy of tile kt + 1, if there
  // is one, into tile kt - 1's buffer. Called by every thread.
  __device__ void AwaitAndLoadNext(int64_t kt) {
    AwaitTile();
    if (kt + 1 < tiles_) Load(kt + 1);
  }

  __device__ int64_t tiles() const { return tiles_; }
  __device__ Bf16* k(int64_t kt) const { return k_ + kt % 2 * kTileElements<kMaxD>; }
  __device__ Bf16* v(int64_t kt) const { return v_ + kt % 2 * kTileElements<kMaxD>; }

 private:
  int64_t tiles_;
  Bf16* k_;
  Bf16* v_;
  const T* k_rows_;
  const T* v_rows_;
  int64_t stride_, seq_, head_dim_;
};

// Forward. Shared memory: q, then k and v twice (the current key tile and the next), [kTile,
// kMaxD] bf16 each.
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashForwardKernel(const T* qkv, FlashShape s, float scale_log2, T* out, float* lse) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* q = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  const int row0 = WarpIndex() * kStrip;
  const int64_t bh = FlashHead(s), first = LastTileFirst(s);
  KeyTiles<kMaxD, T> keys(arrays, qkv, s, bh, first);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 0, bh), 3 * s.heads * s.head_dim, first, s.seq, s.head_dim,
                  q);
  keys.Load(0);
  const SharedStrip<kMaxD> warp_q(q + row0 * kHeadStride<kMaxD>);
  int64_t t[2];  // The queries of the lane's two strip rows.
  float row_max[2], row_sum[2];
  for (int h = 0; h < 2; ++h) {
    t[h] = first + row0 + StripRow(2 * h);
    row_max[h] = -INFINITY;
    row_sum[h] = 0.0f;
  }
  ResultStrip<kMaxD> o = {};
  // Every row sees key 0 (see Visible), so its maximum is finite from the first key tile on.
  for (int64_t kt = 0; kt < keys.tiles(); ++kt) {
    keys.AwaitAndLoadNext(kt);
    const int64_t k0 = kt * kTile;
    // Blocks past `blocks` hold no key that the strip's rows see: not computed (0), and masked.
    const int blocks = KeyBlocks(first + row0 + kStrip - 1, k0, s.seq);
    ScoreStrip p;
    StripTimesTileT<kMaxD>(warp_q, keys.k(kt), 0, blocks, p);
    if (k0 + kTile > first + row0 || k0 + kTile > s.seq) {
      Hide([&](int r, int col) { return !Visible(first + row0 + r, k0 + col, s.seq); }, p);
    }
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[n][e] = __fmul_rn(p[n][e], scale_log2);  // -inf where hidden; never fused.
        tile_max[e / 2] = fmaxf(tile_max[e / 2], p[n][e]);
      }
    }
    float factor[2];
    for (int h = 0; h < 2; ++h) {
      // A row's four lanes (lane % 4) combine their maxima.
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 2));
      const float new_max = fmaxf(row_max[h], tile_max[h]);
      factor[h] = exp2f(row_max[h] - new_max);  // 0 on the first key tile.
      row_max[h] = new_max;
    }
    float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[n][e] = exp2f(p[n][e] - row_max[e / 2]);  // 0 where masked (-inf).
        tile_sum[e / 2] += p[n][e];
      }
    }
    for (int h = 0; h < 2; ++h) {
      // Butterflies: the four lanes end with the same bits (a + b == b + a exactly).
      tile_sum[h] = __fadd_rn(tile_sum[h], __shfl_xor_sync(kFullMask, tile_sum[h], 1));
      tile_sum[h] = __fadd_rn(tile_sum[h], __shfl_xor_sync(kFullMask, tile_sum[h], 2));
      row_sum[h] = fmaf(row_sum[h], factor[h], tile_sum[h]);
    }
#pragma unroll
    for (int n = 0; n < kMaxD / kColumns; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= factor[e / 2];
    }
    AccumulateStripTimesTile<kMaxD>(p, keys.v(kt), 0, blocks, o);
  }
  float inverse_sum[2];
  for (int h = 0; h < 2; ++h) {
    inverse_sum[h] = 1.0f / row_sum[h];
    if (Lane() % 4 == 0 && t[h] < s.seq) {
      lse[bh * s.seq + t[h]] = (row_max[h] + log2f(row_sum[h])) * kLn2;
    }
  }
  StoreStrip<kMaxD>(o, inverse_sum, first + row0, s.seq, s.head_dim, s.heads * s.head_dim,
                    HeadRows(out, s, 1, 0, bh));
}

// dq over query tiles; also writes delta[bh, t] = sum over d of out dout (dout in bf16) for the
// dk, dv kernel. Shared memory: q, dout [kTile, kMaxD] bf16, then k and v twice (the current
// key tile and the next); row_lse (in log2 units), row_delta [kTile] f32.
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashQueryGradKernel(const T* qkv, const T* out, const T* dout, const float* lse,
                             FlashShape s, float scale, float scale_log2, float* delta, T* dqkv) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* q = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* g = arrays.Take<Bf16>(kHeadBytes<kMaxD>);  // dout
  const int lane = Lane(), row0 = WarpIndex() * kStrip;
  const int64_t bh = FlashHead(s), first = LastTileFirst(s), c = s.heads * s.head_dim;
  KeyTiles<kMaxD, T> keys(arrays, qkv, s, bh, first);
  float* row_lse = arrays.Take<float>(kRowBytes);
  float* row_delta = arrays.Take<float>(kRowBytes);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 0, bh), 3 * c, first, s.seq, s.head_dim, q);
  LoadTile<kMaxD>(HeadRows(dout, s, 1, 0, bh), c, first, s.seq, s.head_dim, g);
  keys.Load(0);
  AwaitTile();  // g is loaded.
  // The strip's rows' lse and delta, each row's dot product over the warp's lanes in WarpSum's
  // fixed order; 0 past the sequence. delta is the sum of out times dout as rounded to bf16, as dp
  // has it: then ds = p (dp - delta) sums to 0 over a row up to the rounding of out (f32, or
  // bf16 when the arrays are, as in FlashAttention-2) and of f32, as the exact gradient does,
  // where delta from the f32 dout would leave dout's rounding in each ds.
  // Every lane's loads for all the strip's rows are issued before any sum waits on them, so
  // that the warp waits for global memory once, not once a row.
  const T* o_rows = HeadRows(out, s, 1, 0, bh);
  float partial[kStrip];  // The lane's part of each row's dot product, d = lane + 32 i.
#pragma unroll
  for (int i = 0; i < kStrip; ++i) {
    const int r = row0 + i;
    const int64_t t = first + r;
    partial[i] = 0.0f;
#pragma unroll
    for (int d0 = 0; d0 < kMaxD; d0 += kWarpSize) {
      const int d = d0 + lane;
      if (t < s.seq && d < s.head_dim) {
        partial[i] = fmaf(ToFloat(o_rows[t * c + d]),
                          __bfloat162float(g[r * kHeadStride<kMaxD> + d]), partial[i]);
      }
    }
  }
  if (lane < kStrip) {  // Lane i: row i's lse.
    const int64_t t = first + row0 + lane;
    row_lse[row0 + lane] = t < s.seq ? lse[bh * s.seq + t] * kLog2e : 0.0f;
  }
#pragma unroll
  for (int i = 0; i < kStrip; ++i) {
    const int64_t t = first + row0 + i;
    const float dot = WarpSum(partial[i]);
    if (lane == 0) {
      row_delta[row0 + i] = dot;
      if (t < s.seq) delta[bh * s.seq + t] = dot;
    }
  }
  __syncwarp();                    // The warp's rows of row_lse and row_delta are written.
  float lse_row[2], delta_row[2];  // Of the lane's two strip rows.
  for (int h = 0; h < 2; ++h) {
    lse_row[h] = row_lse[row0 + StripRow(2 * h)];
    delta_row[h] = row_delta[row0 + StripRow(2 * h)];
  }
  const SharedStrip<kMaxD> warp_q(q + row0 * kHeadStride<kMaxD>);
  const SharedStrip<kMaxD> warp_g(g + row0 * kHeadStride<kMaxD>);
  ResultStrip<kMaxD> dq = {};
  for (int64_t kt = 0; kt < keys.tiles(); ++kt) {
    keys.AwaitAndLoadNext(kt);
    const int64_t k0 = kt * kTile;
    const int blocks = KeyBlocks(first + row0 + kStrip - 1, k0, s.seq);
    ScoreStrip ds, dp;
    StripTimesTileT<kMaxD>(warp_q, keys.k(kt), 0, blocks, ds);
    StripTimesTileT<kMaxD>(warp_g, keys.v(kt), 0, blocks, dp);
    // ds / scale = p (dp - delta), p = exp2(score - lse) where the query (real) sees the key,
    // else 0.
    if (k0 + kTile > first + row0 || first + row0 + kStrip > s.seq) {
      Hide(
          [&](int r, int col) {
            const int64_t t = first + row0 + r;
            return !(k0 + col <= t && t < s.seq);
          },
          ds);
    }
#pragma unroll
    for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e / 2;
        const float prob = exp2f(fmaf(ds[n][e], scale_log2, -lse_row[h]));
        ds[n][e] = prob * (dp[n][e] - delta_row[h]);
      }
    }
    AccumulateStripTimesTile<kMaxD>(ds, keys.k(kt), 0, blocks, dq);  // dq += ds k
  }
  StoreStrip<kMaxD>(dq, {scale, scale}, first + row0, s.seq, s.head_dim, 3 * c,
                    HeadRows(dqkv, s, 3, 0, bh));
}

// Starts filling the query tile at q0 of the dk, dv kernel: q and dout (LoadTile).
template <int kMaxD, typename T>
__device__ void LoadQueryTile(const T* q_rows, const T* g_rows, const FlashShape& s, int64_t q0,
                              Bf16* q, Bf16* g) {
  const int64_t c = s.heads * s.head_dim;
  LoadTile<kMaxD>(q_rows, 3 * c, q0, s.seq, s.head_dim, q);
  LoadTile<kMaxD>(g_rows, c, q0, s.seq, s.head_dim, g);
  CpAsyncCommit();
}

// Row threadIdx.x's lse (in log2 units) and delta of the query tile at q0, in registers: 0 past
// the sequence and for threads past the tile's rows. Read while the current tile is in use and
// stored after it (StoreQueryRow), so that no barrier waits on global memory for them.
struct QueryRow {
  float lse = 0.0f;
  float delta = 0.0f;
};
static_assert(kThreads >= kTile, "a thread for every row of a tile");
__device__ inline QueryRow LoadQueryRow(const float* lse, const float* delta, const FlashShape& s,
                                        int64_t bh, int64_t q0) {
  QueryRow row;
  const int64_t t = q0 + threadIdx.x;
  if (threadIdx.x < kTile && t < s.seq) {
    row.lse = lse[bh * s.seq + t] * kLog2e;
    row.delta = delta[bh * s.seq + t];
  }
  return row;
}
// Into a tile's row_lse and row_delta [kTile]; visible to the block after the next
// __syncthreads().
__device__ inline void StoreQueryRow(const QueryRow& row, float* row_lse, float* row_delta) {
  if (threadIdx.x < kTile) {
    row_lse[threadIdx.x] = row.lse;
    row_delta[threadIdx.x] = row.delta;
  }
}

// Whether the dk/dv kernel holds its warp's strips of k and v in registers for the whole walk
// (HeldStrip): at D = 64 that spares 8 of the 72 fragment loads from shared memory (ldmatrix.x4)
// that each query tile takes per warp, one in nine. ptxas (sm_90, bf16 arrays): at D = 64 its
// registers go from 213 to 245, still 2 blocks an SM, no spills; at D = 32 from 168 to 184, 2
// blocks an SM instead of 3; at D = 128 it spills.
template <int kMaxD>
constexpr bool kHoldKeyStrips = kMaxD == 64;

// dk and dv over key tiles: each warp's strip holds 16 keys, and its scores and probabilities
// are those of the tile transposed ([key, query]). Shared memory: k, v [kTile, kMaxD] bf16, then
// q and dout twice (the current query tile and the next); row_lse (in log2 units) and row_delta
// [kTile] f32 twice, of the query tiles.
template <int kMaxD, typename T>
__global__ void __launch_bounds__(kThreads)
    Bf16FlashKeyGradKernel(const T* qkv, const T* dout, const float* lse, const float* delta,
                           FlashShape s, float scale, float scale_log2, T* dqkv) {
  extern __shared__ __align__(128) unsigned char shared[];
  SharedArrays arrays(shared);
  Bf16* k = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* v = arrays.Take<Bf16>(kHeadBytes<kMaxD>);
  Bf16* q = arrays.Take<Bf16>(2 * kHeadBytes<kMaxD>);  // Tiles at q and q + kTileElements.
  Bf16* g = arrays.Take<Bf16>(2 * kHeadBytes<kMaxD>);  // dout
  float* row_lse = arrays.Take<float>(2 * kRowBytes);  // Rows at row_lse and row_lse + kTile.
  float* row_delta = arrays.Take<float>(2 * kRowBytes);
  const int warp = WarpIndex(), row0 = warp * kStrip;
  // The first key tiles have the most work (every later query sees them): they start first.
  const int64_t bh = FlashHead(s), first = FirstTileFirst(s);
  const int64_t c = s.heads * s.head_dim;
  const T* q_rows = HeadRows(qkv, s, 3, 0, bh);
  const T* g_rows = HeadRows(dout, s, 1, 0, bh);
  // Query tiles before this key tile see none of its keys; tiles are aligned (both kTile).
  const int64_t tiles = (s.seq - first + kTile - 1) / kTile;
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 1, bh), 3 * c, first, s.seq, s.head_dim, k);
  LoadTile<kMaxD>(HeadRows(qkv, s, 3, 2, bh), 3 * c, first, s.seq, s.head_dim, v);
  LoadQueryTile<kMaxD>(q_rows, g_rows, s, first, q, g);
  StoreQueryRow(LoadQueryRow(lse, delta, s, bh, first), row_lse, row_delta);
  AwaitTile();  // k and v are in shared memory, where a HeldStrip reads them at once.
  using KeyStrip = std::conditional_t<kHoldKeyStrips<kMaxD>, HeldStrip<kMaxD>, SharedStrip<kMaxD>>;
  const KeyStrip warp_k(k + row0 * kHeadStride<kMaxD>);
  const KeyStrip warp_v(v + row0 * kHeadStride<kMaxD>);
  ResultStrip<kMaxD> dk = {}, dv = {};
  for (int64_t qt = 0; qt < tiles; ++qt) {
    const int buf = static_cast<int>(qt % 2);  // The query tile in use; the other is the next.
    const Bf16* q_tile = q + buf * kTileElements<kMaxD>;
    const Bf16* g_tile = g + buf * kTileElements<kMaxD>;
    const float* tile_lse = row_lse + buf * kTile;
    const float* tile_delta = row_delta + buf * kTile;
    const int64_t q0 = first + qt * kTile;
    const bool next = qt + 1 < tiles;
    // Query tile qt and its rows are in shared memory for the whole block, and every warp is
    // done with tile qt - 1, whose buffers now take tile qt + 1.
    AwaitTile();
    QueryRow next_row;
    if (next) {
      LoadQueryTile<kMaxD>(q_rows, g_rows, s, q0 + kTile, q + (1 - buf) * kTileElements<kMaxD>,
                           g + (1 - buf) * kTileElements<kMaxD>);
      next_row = LoadQueryRow(lse, delta, s, bh, q0 + kTile);
    }
    // The 16-query blocks [j0, j1) hold real queries that see some key of the strip: on the
    // diagonal tile the blocks before the strip's own see none.
    const int j0 = q0 == first ? warp : 0;
    const int64_t real_blocks = (s.seq - q0 + kBlock - 1) / kBlock;
    const int j1 = real_blocks < kBlocks ? static_cast<int>(real_blocks) : kBlocks;
    ScoreStrip p, ds;
    StripTimesTileT<kMaxD>(warp_k, q_tile, j0, j1, p);
    StripTimesTileT<kMaxD>(warp_v, g_tile, j0, j1, ds);
    // p and ds / scale = p (dp - delta), transposed; p is 0 where the query (real) does not see
    // the key, which only the diagonal tile and the sequence's end hold.
    if (q0 == first || q0 + kTile > s.seq) {
      Hide(
          [&](int r, int col) {
            const int64_t t = q0 + col;
            return !(first + row0 + r <= t && t < s.seq);
          },
          p);
    }
#pragma unroll
    for (int n = 0; n < kScoreBlocks; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = StripColumn(n, e);
        const float prob = exp2f(fmaf(p[n][e], scale_log2, -tile_lse[col]));
        p[n][e] = prob;
        ds[n][e] = prob * (ds[n][e] - tile_delta[col]);
      }
    }
    AccumulateStripTimesTile<kMaxD>(p, g_tile, j0, j1, dv);   // dv += p^T dout
    AccumulateStripTimesTile<kMaxD>(ds, q_tile, j0, j1, dk);  // dk += ds^T q
    // The next tile's rows, into the buffers that the last iteration used (visible after the
    // next iteration's AwaitTile).
    if (next) StoreQueryRow(next_row, row_lse + (1 - buf) * kTile, row_delta + (1 - buf) * kTile);
  }
  StoreStrip<kMaxD>(dk, {scale, scale}, first + row0, s.seq, s.head_dim, 3 * c,
                    HeadRows(dqkv, s, 3, 1, bh));
  StoreStrip<kMaxD>(dv, {1.0f, 1.0f}, first + row0, s.seq, s.head_dim, 3 * c,
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

// Bf16FlashAttentionTakes: qkv and dout 16-byte aligned, the result aligned to a pair.
template <typename T>
bool Takes(const FlashShape& shape, const T* qkv, const T* dout, const T* result) {
  return shape.head_dim >= kBlock && shape.head_dim <= kFlashMaxHeadDim &&
         shape.head_dim % kBlock == 0 && AlignedTo(qkv, 16) &&
         (dout == nullptr || AlignedTo(dout, 16)) && AlignedTo(result, 2 * sizeof(T));
}

template <typename T>
cudaError_t LaunchForward(const T* qkv, const FlashShape& shape, T* out, float* lse,
                          cudaStream_t stream) {
  if (!ValidFlashShape(shape) || !Takes<T>(shape, qkv, nullptr, out)) {
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
  if (!ValidFlashShape(shape) || !Takes<T>(shape, qkv, dout, dqkv)) {
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

bool Bf16FlashAttentionTakes(const FlashShape& shape, const float* qkv, const float* dout,
                             const float* result) {
  return Takes(shape, qkv, dout, result);
}

bool Bf16FlashAttentionTakes(const FlashShape& shape, const BFloat16* qkv, const BFloat16* dout,
                             const BFloat16* result) {
  return Takes(shape, AsBf16(qkv), AsBf16(dout), AsBf16(result));
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
