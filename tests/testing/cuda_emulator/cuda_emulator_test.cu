// The CUDA emulator against the PTX ISA's definitions, through the repository's cuda_mma.cuh
// wrappers (so their PTX, operand order included, is what is checked): mma.sync's fragments
// loaded per the ISA's formulas (written out here on their own) against a loop, ldmatrix's
// registers against the formulas, products through ldmatrix and mma.sync with the accumulators
// packed as the next A operand, cp.async's deferred landing, groups and zero fill, the shuffle
// butterfly; then kernels with deliberate bugs that the emulator must report (death tests where it
// stops the process). Host and device code in one file, rewritten by transform_cuda_source.py.
#include <cmath>
#include <csignal>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/nn/internal/cuda_mma.cuh"
#include "tests/testing/cuda_emulator/cuda_emulator.h"

namespace usine::testing::cuda_emulator {
namespace {

using nn_internal::cuda::CpAsync16;
using nn_internal::cuda::CpAsyncCommit;
using nn_internal::cuda::CpAsyncWait;
using nn_internal::cuda::LdMatrixX4;
using nn_internal::cuda::LdMatrixX4Trans;
using nn_internal::cuda::Mma;
using nn_internal::cuda::PackBf16;
using ::testing::HasSubstr;
using Bf16 = __nv_bfloat16;

constexpr uint32_t kSharedPoison = 0x7FC17FC1u;  // Two bf16 poison halves, read as f32 bits.

uint32_t Pair(uint16_t lo, uint16_t hi) { return lo | static_cast<uint32_t>(hi) << 16; }
float RoundBf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
double Value(Bf16 x) { return __bfloat162float(x); }

// Distinct bf16 values in [-2, 2].
class RandomBf16 {
 public:
  Bf16 operator()() { return __float2bfloat16_rn(uniform_(rng_)); }
  float Float() { return uniform_(rng_); }

 private:
  std::mt19937 rng_{12345};
  std::uniform_real_distribution<float> uniform_{-2.0f, 2.0f};
};

// --- mma.sync: D = A B + C, fragments per the PTX ISA ("Matrix Fragments for mma.m16n8k16 with
// floating point type"): A [16][16] and B [16][8] (k, n) row-major, C and D [16][8].
__global__ void MmaFromFormulasKernel(const Bf16* a, const Bf16* b, const float* c, float* d) {
  const int lane = threadIdx.x, g = lane >> 2, t = lane % 4;
  auto A = [&](int row, int col) { return a[row * 16 + col].__x; };
  auto B = [&](int k, int n) { return b[k * 8 + n].__x; };
  // a_i: row g for i in {0, 1, 4, 5}, else g + 8; column 2t + (i & 1), + 8 for i >= 4.
  const uint32_t fa[4] = {
      Pair(A(g, 2 * t), A(g, 2 * t + 1)), Pair(A(g + 8, 2 * t), A(g + 8, 2 * t + 1)),
      Pair(A(g, 2 * t + 8), A(g, 2 * t + 9)), Pair(A(g + 8, 2 * t + 8), A(g + 8, 2 * t + 9))};
  // b_i: row 2t + (i & 1), + 8 for i >= 2; column g.
  const uint32_t fb0 = Pair(B(2 * t, g), B(2 * t + 1, g));
  const uint32_t fb1 = Pair(B(2 * t + 8, g), B(2 * t + 9, g));
  // c_i: row g for i < 2, else g + 8; column 2t + (i & 1).
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t],
                  c[(g + 8) * 8 + 2 * t + 1]};
  Mma(fa, fb0, fb1, acc);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

TEST(CudaEmulator, MmaAddsExactProductsRoundedOnceToC) {
  RandomBf16 random;
  DeviceArray<Bf16> a(256, "a"), b(128, "b");
  DeviceArray<float> c(128, "c"), d(128, "d");
  for (size_t i = 0; i < a.size(); ++i) a[i] = random();
  for (size_t i = 0; i < b.size(); ++i) b[i] = random();
  for (size_t i = 0; i < c.size(); ++i) c[i] = random.Float();
  MmaFromFormulasKernel<<<1, 32>>>(a.data(), b.data(), c.data(), d.data());
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double sum = 0;
      for (int k = 0; k < 16; ++k) sum += Value(a[i * 16 + k]) * Value(b[k * 8 + j]);
      EXPECT_EQ(d[i * 8 + j], static_cast<float>(sum) + c[i * 8 + j])
          << "D[" << i << "][" << j << "]";
    }
  }
}

// --- ldmatrix: a 16 x 16 bf16 tile in shared memory, rows kStride elements apart; lane l gives
// row l % 16 at column 8 (l / 16). Each lane writes its 4 registers of both loads.
constexpr int kStride = 24;

__global__ void LdMatrixKernel(const Bf16* tile, uint32_t* plain, uint32_t* transposed) {
  extern __shared__ __align__(128) unsigned char shared[];
  Bf16* s = reinterpret_cast<Bf16*>(shared);
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) s[i / 16 * kStride + i % 16] = tile[i];
  __syncwarp();
  uint32_t r[4], rt[4];
  const Bf16* row = s + (lane % 16) * kStride + lane / 16 * 8;
  LdMatrixX4(row, r);
  LdMatrixX4Trans(row, rt);
  for (int j = 0; j < 4; ++j) {
    plain[lane * 4 + j] = r[j];
    transposed[lane * 4 + j] = rt[j];
  }
}

class CudaEmulatorLdMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 256; ++i) tile_[i] = __ushort_as_bfloat16(0x3f80 + i);  // Distinct.
    LdMatrixKernel<<<1, 32, 16 * kStride * sizeof(Bf16)>>>(tile_.data(), plain_.data(),
                                                           transposed_.data());
  }
  uint16_t Tile(int row, int col) const { return tile_[row * 16 + col].__x; }
  // Matrix j's row r comes from lane 8j + r: tile row (8j + r) % 16, column 8 ((8j + r) / 16).
  uint16_t Matrix(int j, int r, int c) const {
    return Tile((8 * j + r) % 16, (8 * j + r) / 16 * 8 + c);
  }

  DeviceArray<Bf16> tile_{256, "tile"};
  DeviceArray<uint32_t> plain_{128, "plain"}, transposed_{128, "transposed"};
};

TEST_F(CudaEmulatorLdMatrix, GivesEachLaneARowPairOfEachMatrix) {
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(plain_[l * 4 + j], Pair(Matrix(j, g, 2 * t), Matrix(j, g, 2 * t + 1)))
          << "lane " << l << ", r[" << j << "]";
    }
  }
}

TEST_F(CudaEmulatorLdMatrix, TransGivesEachLaneAColumnPairOfEachMatrix) {
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(transposed_[l * 4 + j], Pair(Matrix(j, 2 * t, g), Matrix(j, 2 * t + 1, g)))
          << "lane " << l << ", r[" << j << "]";
    }
  }
}

// cuda_mma.cuh's claim: that lane pattern over a row-major block gives mma's A fragment.
TEST_F(CudaEmulatorLdMatrix, LoadsTheMmaAFragmentOfARowMajorBlock) {
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    const uint32_t want[4] = {Pair(Tile(g, 2 * t), Tile(g, 2 * t + 1)),
                              Pair(Tile(g + 8, 2 * t), Tile(g + 8, 2 * t + 1)),
                              Pair(Tile(g, 2 * t + 8), Tile(g, 2 * t + 9)),
                              Pair(Tile(g + 8, 2 * t + 8), Tile(g + 8, 2 * t + 9))};
    for (int j = 0; j < 4; ++j) EXPECT_EQ(plain_[l * 4 + j], want[j]) << "lane " << l;
  }
}

// --- D = A B (16 x 16 each) through ldmatrix and mma.sync, B in shared memory as [k][n]
// (LdMatrixX4Trans) or [n][k] (LdMatrixX4), then E = bf16(D) B2 with the accumulators packed as
// the A fragment (PackBf16), as the flash kernels chain their products.
__global__ void ProductKernel(const Bf16* a, const Bf16* b, const Bf16* b2, bool b_as_n_by_k,
                              float* d, float* e) {
  extern __shared__ __align__(128) unsigned char shared[];
  Bf16* sa = reinterpret_cast<Bf16*>(shared);
  Bf16* sb = sa + 16 * kStride;
  Bf16* sb2 = sb + 16 * kStride;
  const int lane = threadIdx.x, g = lane >> 2, t = lane % 4;
  for (int i = lane; i < 256; i += 32) {
    const int r = i / 16, c = i % 16;  // b[k][n]: k = r, n = c.
    sa[r * kStride + c] = a[i];
    (b_as_n_by_k ? sb[c * kStride + r] : sb[r * kStride + c]) = b[i];
    sb2[r * kStride + c] = b2[i];
  }
  __syncwarp();
  uint32_t fa[4], fb[4], fb2[4];
  LdMatrixX4(sa + (lane % 16) * kStride + lane / 16 * 8, fa);
  if (b_as_n_by_k) {
    // Matrices (n, k): (0-7, 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15).
    LdMatrixX4(sb + (lane % 8 + lane / 16 * 8) * kStride + lane / 8 % 2 * 8, fb);
  } else {
    // Matrices (k, n): (0-7, 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15).
    LdMatrixX4Trans(sb + (lane % 8 + lane / 8 % 2 * 8) * kStride + lane / 16 * 8, fb);
  }
  LdMatrixX4Trans(sb2 + (lane % 8 + lane / 8 % 2 * 8) * kStride + lane / 16 * 8, fb2);
  float acc[2][4] = {}, acc2[2][4] = {};
  Mma(fa, fb[0], fb[1], acc[0]);
  Mma(fa, fb[2], fb[3], acc[1]);
  const uint32_t packed[4] = {PackBf16(acc[0][0], acc[0][1]), PackBf16(acc[0][2], acc[0][3]),
                              PackBf16(acc[1][0], acc[1][1]), PackBf16(acc[1][2], acc[1][3])};
  Mma(packed, fb2[0], fb2[1], acc2[0]);
  Mma(packed, fb2[2], fb2[3], acc2[1]);
  for (int n = 0; n < 2; ++n) {
    for (int h = 0; h < 2; ++h) {
      d[(g + 8 * h) * 16 + n * 8 + 2 * t] = acc[n][2 * h];
      d[(g + 8 * h) * 16 + n * 8 + 2 * t + 1] = acc[n][2 * h + 1];
      e[(g + 8 * h) * 16 + n * 8 + 2 * t] = acc2[n][2 * h];
      e[(g + 8 * h) * 16 + n * 8 + 2 * t + 1] = acc2[n][2 * h + 1];
    }
  }
}

class CudaEmulatorProduct : public ::testing::TestWithParam<bool> {};

TEST_P(CudaEmulatorProduct, ChainsLdMatrixAndMmaAsALoopDoes) {
  const bool b_as_n_by_k = GetParam();
  RandomBf16 random;
  DeviceArray<Bf16> a(256, "a"), b(256, "b"), b2(256, "b2");
  DeviceArray<float> d(256, "d"), e(256, "e");
  for (int i = 0; i < 256; ++i) a[i] = random(), b[i] = random(), b2[i] = random();
  ProductKernel<<<1, 32, 3 * 16 * kStride * sizeof(Bf16)>>>(a.data(), b.data(), b2.data(),
                                                            b_as_n_by_k, d.data(), e.data());
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 16; ++j) {
      double sum_d = 0, sum_e = 0;
      for (int k = 0; k < 16; ++k) {
        sum_d += Value(a[i * 16 + k]) * Value(b[k * 16 + j]);
        sum_e += RoundBf16(d[i * 16 + k]) * Value(b2[k * 16 + j]);
      }
      EXPECT_EQ(d[i * 16 + j], static_cast<float>(sum_d)) << "D[" << i << "][" << j << "]";
      EXPECT_EQ(e[i * 16 + j], static_cast<float>(sum_e)) << "E[" << i << "][" << j << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BLayouts, CudaEmulatorProduct, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "BStoredNByK" : "BStoredKByN";
                         });

// --- cp.async: 64 threads, 128 chunks of 16 bytes; thread i copies chunk i (group 1) and chunk
// 64 + i (group 2, zero-filled for odd i). It observes (the first f32 of a chunk, as bits)
// [0] its chunk i before any wait, [1] its chunk 64 + i after wait_group 1, [2] chunk i then,
// [3] chunk 64 + i after wait_group 0; then every thread copies out all chunks after a barrier.
__global__ void CpAsyncKernel(const float* from, uint32_t* seen, float* all) {
  extern __shared__ __align__(128) unsigned char shared[];
  float* s = reinterpret_cast<float*>(shared);
  const int i = threadIdx.x;
  auto first = [&](int chunk) { return __float_as_uint(s[chunk * 4]); };
  CpAsync16(s + i * 4, from + i * 4, false);
  CpAsyncCommit();
  CpAsync16(s + (64 + i) * 4, from + (64 + i) * 4, i % 2 == 1);
  CpAsyncCommit();
  seen[i * 4 + 0] = first(i);
  CpAsyncWait<1>();
  seen[i * 4 + 1] = first(64 + i);
  seen[i * 4 + 2] = first(i);
  CpAsyncWait<0>();
  seen[i * 4 + 3] = first(64 + i);
  __syncthreads();
  for (int k = i; k < 512; k += 64) all[k] = s[k];
}

class CudaEmulatorCpAsync : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 512; ++i) from_[i] = static_cast<float>(i + 1);
    CpAsyncKernel<<<1, 64, 2048>>>(from_.data(), seen_.data(), all_.data());
  }
  // What chunk 64 + i holds once landed: zeros for odd i (src-size 0).
  float SecondChunk(int i) const { return i % 2 == 1 ? 0.0f : from_[(64 + i) * 4]; }

  DeviceArray<float> from_{512, "from"}, all_{512, "all"};
  DeviceArray<uint32_t> seen_{256, "seen"};
};

TEST_F(CudaEmulatorCpAsync, CopiesLandOnlyAtTheWaitThatRetiresTheirGroup) {
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(seen_[i * 4 + 0], kSharedPoison) << "thread " << i << ", before any wait";
    EXPECT_EQ(seen_[i * 4 + 1], kSharedPoison) << "thread " << i << ", newest group pending";
    EXPECT_EQ(seen_[i * 4 + 2], __float_as_uint(from_[i * 4])) << "thread " << i;
    EXPECT_EQ(seen_[i * 4 + 3], __float_as_uint(SecondChunk(i))) << "thread " << i;
  }
}

TEST_F(CudaEmulatorCpAsync, BlockSeesEveryCopyAfterABarrierZerosWhereNoSource) {
  for (int k = 0; k < 512; ++k) {
    const int chunk = k / 4;
    const float want = chunk < 64 ? from_[k] : (chunk % 2 == 1 ? 0.0f : from_[k]);
    EXPECT_EQ(__float_as_uint(all_[k]), __float_as_uint(want)) << "element " << k;
  }
}

// --- Shuffles, in cuda_reduce.cuh's WarpSum order.
__global__ void WarpSumKernel(const float* x, float* sums) {
  float v = x[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) {
    v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  sums[threadIdx.x] = v;
}

TEST(CudaEmulator, ShuffleXorButterflyGivesEveryLaneItsPartnersValues) {
  RandomBf16 random;
  DeviceArray<float> x(32, "x"), sums(32, "sums");
  std::vector<float> want(32);
  for (int i = 0; i < 32; ++i) want[i] = x[i] = random.Float();
  WarpSumKernel<<<1, 32>>>(x.data(), sums.data());
  for (int offset = 16; offset > 0; offset /= 2) {
    std::vector<float> next(32);
    for (int l = 0; l < 32; ++l) next[l] = want[l] + want[l ^ offset];
    want = next;
  }
  for (int l = 0; l < 32; ++l) EXPECT_EQ(__float_as_uint(sums[l]), __float_as_uint(want[l]));
}

// Within segments of 16 lanes: a partner in a later segment gives a lane its own value, one in an
// earlier segment its value (CUDA C++ Programming Guide, warp shuffle functions).
__global__ void ShuffleXorWidth16Kernel(const int* x, int lane_mask, int* got) {
  got[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], lane_mask, 16);
}

TEST(CudaEmulator, ShuffleXorWithinSegmentsReadsEarlierSegmentsOnly) {
  DeviceArray<int> x(32, "x"), got(32, "got");
  for (int l = 0; l < 32; ++l) x[l] = 100 + l;
  for (const int lane_mask : {5, 16, 21}) {
    ShuffleXorWidth16Kernel<<<1, 32>>>(x.data(), lane_mask, got.data());
    for (int l = 0; l < 32; ++l) {
      const int source = l ^ lane_mask;
      const int want = source >= l / 16 * 16 + 16 ? x[l] : x[source];
      EXPECT_EQ(got[l], want) << "lane " << l << ", lane mask " << lane_mask;
    }
  }
}

// --- A kernel template launched with deduced arguments (LaunchTemplate), across 3 blocks.
template <typename T>
__global__ void AddBlockIndexKernel(T* x) {
  x[blockIdx.x * blockDim.x + threadIdx.x] += static_cast<T>(blockIdx.x);
}

TEST(CudaEmulator, LaunchesKernelTemplatesWithDeducedArguments) {
  DeviceArray<int> x(96, "x");
  for (int i = 0; i < 96; ++i) x[i] = i;
  AddBlockIndexKernel<<<3, 32>>>(x.data());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  for (int i = 0; i < 96; ++i) EXPECT_EQ(x[i], i + i / 32);
}

// --- Launch configurations that CUDA refuses run nothing and leave their error.
__global__ void WriteOneKernel(float* x) { x[threadIdx.x] = 1.0f; }

TEST(CudaEmulator, RefusesBlocksOfMoreThan1024Threads) {
  const int64_t launches = TotalStatistics().launches;
  WriteOneKernel<<<1, 1025>>>(nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // Taken by the first call.
  EXPECT_EQ(TotalStatistics().launches, launches);
}

TEST(CudaEmulator, NeedsTheOptInForMoreThan48KBOfDynamicSharedMemory) {
  DeviceArray<float> x(32, "x");
  WriteOneKernel<<<1, 32, 64 << 10>>>(x.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  ASSERT_EQ(
      cudaFuncSetAttribute(WriteOneKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10),
      cudaSuccess);
  WriteOneKernel<<<1, 32, 64 << 10>>>(x.data());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(x[31], 1.0f);
  EXPECT_EQ(
      cudaFuncSetAttribute(WriteOneKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 << 10),
      cudaErrorInvalidValue);
}

// --- Deliberate bugs that the emulator reports and goes on from.
__global__ void RaceKernel(float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  float* s = reinterpret_cast<float*>(shared);
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  // A __syncthreads() is missing here: warp 0 reads what warp 1 may not have written yet.
  out[threadIdx.x] = s[(threadIdx.x + 32) % 64];
}

TEST(CudaEmulator, ReversedScheduleRevealsAMissingBarrier) {
  DeviceArray<float> forward(64, "forward"), reversed(64, "reversed");
  RaceKernel<<<1, 64, 256>>>(forward.data());
  SetExecutionOrder({Schedule::kRoundRobinReversed, CpAsyncLanding::kAtWait});
  RaceKernel<<<1, 64, 256>>>(reversed.data());
  SetExecutionOrder({});
  int differ = 0;
  for (int i = 0; i < 64; ++i)
    differ += __float_as_uint(forward[i]) != __float_as_uint(reversed[i]);
  EXPECT_GT(differ, 0);
}

__global__ void EarlyReturnKernel(float* out) {
  if (threadIdx.x >= 48) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

TEST(CudaEmulator, ReportsThreadsThatExitWhileOthersWaitAtABarrier) {
  DeviceArray<float> out(64, "out");
  const int errors = ErrorCount();
  EarlyReturnKernel<<<1, 64>>>(out.data());
  EXPECT_EQ(ErrorCount(), errors + 1);
  EXPECT_THAT(LastErrorMessage(), HasSubstr("exited while 48 threads wait at __syncthreads"));
}

__global__ void UnwaitedCopyKernel(const float* from, float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  float* s = reinterpret_cast<float*>(shared);
  CpAsync16(s + threadIdx.x * 4, from + threadIdx.x * 4, false);
  CpAsyncCommit();
  out[threadIdx.x] = s[threadIdx.x * 4];  // Before any wait: the poison.
}

TEST(CudaEmulator, ReportsCopiesNeverWaitedForAndReadsBeforeTheWaitSeeThePoison) {
  DeviceArray<float> from(128, "from"), out(32, "out");
  for (int i = 0; i < 128; ++i) from[i] = 1.0f;
  const int errors = ErrorCount();
  UnwaitedCopyKernel<<<1, 32, 512>>>(from.data(), out.data());
  EXPECT_EQ(ErrorCount(), errors + 32);  // Each thread.
  EXPECT_THAT(LastErrorMessage(), HasSubstr("never waited for"));
  for (int i = 0; i < 32; ++i) EXPECT_EQ(__float_as_uint(out[i]), kSharedPoison);
}

// A write past the end of memory that the emulator guards with canaries: reported after the
// launch (block) that made it; under AddressSanitizer, ASan stops the process.
template <typename Launch>
void ExpectOverrunReported(Launch launch, const char* message) {
  if (kUsesAddressSanitizer) {
    EXPECT_DEATH(launch(), "heap-buffer-overflow");
    return;
  }
  const int errors = ErrorCount();
  launch();
  EXPECT_EQ(ErrorCount(), errors + 1);
  EXPECT_THAT(LastErrorMessage(), HasSubstr(message));
}

__global__ void AddOneKernel(float* out, const float* in) {
  out[threadIdx.x] = in[threadIdx.x] + 1;
}

// A launch's pointer arguments are its accesses for the checks of the order between streams
// (internal/stream_order.h): written through a pointer, read through a pointer to const.
TEST(CudaEmulator, ReportsALaunchThatMayRunWhileAnotherStreamsLaunchReadsItsOutput) {
  DeviceArray<float> a(32, "a"), b(32, "b"), c(32, "c");
  cudaStream_t first = nullptr, second = nullptr;
  cudaEvent_t written = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&first, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  const int errors = ErrorCount();
  AddOneKernel<<<1, 32, 0, first>>>(b.data(), a.data());
  ASSERT_EQ(cudaEventRecord(written, first), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(second, written, 0), cudaSuccess);
  AddOneKernel<<<1, 32, 0, second>>>(c.data(), b.data());  // Reads b once it is written.
  EXPECT_EQ(ErrorCount(), errors);
  AddOneKernel<<<1, 32, 0, first>>>(b.data(), a.data());  // Writes b while `second` may read it.
  EXPECT_EQ(ErrorCount(), errors + 1);
  EXPECT_THAT(LastErrorMessage(), HasSubstr(": argument 1 on stream #"));
  EXPECT_THAT(LastErrorMessage(), HasSubstr(": argument 2 on stream #"));
  EXPECT_THAT(LastErrorMessage(), HasSubstr("with nothing ordering the two"));
  // Reads through pointers to const, on two streams at once, are no race.
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  AddOneKernel<<<1, 32, 0, first>>>(b.data(), a.data());
  AddOneKernel<<<1, 32, 0, second>>>(c.data(), a.data());
  EXPECT_EQ(ErrorCount(), errors + 1);
  // A refused launch runs nothing: no access.
  AddOneKernel<<<1, 2048, 0, second>>>(b.data(), a.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(ErrorCount(), errors + 1);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(written), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(first), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(second), cudaSuccess);
}

struct TwoInputs {
  const float* in[2];
  int n;
};

__global__ void SumTwoKernel(TwoInputs inputs, float* out) {
  out[threadIdx.x] = inputs.in[0][threadIdx.x] + inputs.in[1][threadIdx.x];
}

// The pointers inside a struct argument count as reads: a launch that reads through one races
// with another stream's write that nothing orders it after, and reads on two streams do not.
TEST(CudaEmulator, ReportsALaunchThatReadsThroughAStructWhatAnotherStreamMayStillWrite) {
  DeviceArray<float> a(32, "a"), b(32, "b"), c(32, "c"), d(32, "d");
  cudaStream_t first = nullptr, second = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&first, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking), cudaSuccess);
  const int errors = ErrorCount();
  SumTwoKernel<<<1, 32, 0, first>>>(TwoInputs{{a.data(), b.data()}, 32}, c.data());
  SumTwoKernel<<<1, 32, 0, second>>>(TwoInputs{{a.data(), b.data()}, 32}, d.data());
  EXPECT_EQ(ErrorCount(), errors);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(b.data(), 0, 32 * sizeof(float), first), cudaSuccess);
  SumTwoKernel<<<1, 32, 0, second>>>(TwoInputs{{a.data(), b.data()}, 32}, d.data());
  EXPECT_EQ(ErrorCount(), errors + 1);
  EXPECT_THAT(LastErrorMessage(), HasSubstr(": argument 1 on stream #"));
  EXPECT_THAT(LastErrorMessage(), HasSubstr("reads"));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(first), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(second), cudaSuccess);
}

__global__ void WriteShiftedKernel(float* out) { out[threadIdx.x + 3] = 1.0f; }

TEST(CudaEmulator, ReportsWritesPastTheEndOfADeviceArray) {
  DeviceArray<float> out(30, "out30");
  ExpectOverrunReported([&] { WriteShiftedKernel<<<1, 32>>>(out.data()); },
                        "device array 'out30' (120 bytes): byte 0 past its end was written");
}

__global__ void SharedOverrunKernel(float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  float* s = reinterpret_cast<float*>(shared);
  s[threadIdx.x] = 1.0f;  // 100 bytes: lanes 25 to 31 write past them.
  __syncwarp();
  out[threadIdx.x] = s[threadIdx.x % 25];
}

TEST(CudaEmulator, ReportsWritesPastTheEndOfDynamicSharedMemory) {
  DeviceArray<float> out(32, "out");
  ExpectOverrunReported([&] { SharedOverrunKernel<<<1, 32, 100>>>(out.data()); },
                        "write past the end of dynamic shared memory (100 bytes)");
}

// --- Deliberate bugs after which the emulator stops the process.
__device__ void MmaHere(float* out) {
  const uint32_t a[4] = {0, 0, 0, 0};
  float acc[4] = {0, 0, 0, 0};
  Mma(a, 0u, 0u, acc);
  out[threadIdx.x] = acc[0];
}
__device__ void MmaThere(float* out) {
  const uint32_t a[4] = {1, 1, 1, 1};
  float acc[4] = {1, 1, 1, 1};
  Mma(a, 0u, 0u, acc);
  out[threadIdx.x] = 2 * acc[1];
}
__global__ void DivergentMmaKernel(float* out) {
  if (threadIdx.x < 16) {
    MmaHere(out);
  } else {
    MmaThere(out);
  }
}

TEST(CudaEmulatorDeathTest, LanesAtTwoMmaCallSites) {
  DeviceArray<float> out(32, "out");
  EXPECT_EXIT(DivergentMmaKernel<<<1, 32>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus),
              "lanes of one warp at different warp primitives");
}

__global__ void DivergentLdMatrixKernel(float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  Bf16* s = reinterpret_cast<Bf16*>(shared);
  uint32_t r[4] = {};
  if (threadIdx.x % 2 == 1) {
    LdMatrixX4(s + threadIdx.x * 8, r);
  } else {
    LdMatrixX4Trans(s + threadIdx.x * 8, r);
  }
  out[threadIdx.x] = static_cast<float>(r[0]);
}

TEST(CudaEmulatorDeathTest, LanesAtLdMatrixAndLdMatrixTrans) {
  DeviceArray<float> out(32, "out");
  EXPECT_EXIT(DivergentLdMatrixKernel<<<1, 32, 1024>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus),
              "lanes of one warp at different warp primitives");
}

__global__ void SkippedSyncwarpKernel(float* out) {
  if (threadIdx.x != 0) __syncwarp();
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

TEST(CudaEmulatorDeathTest, ALaneSkippingASyncwarp) {
  DeviceArray<float> out(64, "out");
  EXPECT_EXIT(SkippedSyncwarpKernel<<<1, 64>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus),
              "lanes of one warp at different primitives: lane 1 at __syncwarp");
}

__global__ void ShuffleAfterExitKernel(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

TEST(CudaEmulatorDeathTest, ALaneExitedBeforeAShuffle) {
  DeviceArray<float> out(32, "out");
  EXPECT_EXIT(ShuffleAfterExitKernel<<<1, 32>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus), "exited");
}

__global__ void MisalignedLdMatrixKernel(float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  Bf16* s = reinterpret_cast<Bf16*>(shared);
  uint32_t r[4];
  LdMatrixX4(s + threadIdx.x * 8 + 1, r);  // 2 bytes off.
  out[threadIdx.x] = static_cast<float>(r[0]);
}

TEST(CudaEmulatorDeathTest, LdMatrixRowsNotAlignedTo16Bytes) {
  DeviceArray<float> out(32, "out");
  EXPECT_EXIT(MisalignedLdMatrixKernel<<<1, 32, 1024>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus), "not aligned to 16 bytes");
}

__global__ void LdMatrixPastSharedKernel(float* out) {
  extern __shared__ __align__(128) unsigned char shared[];
  Bf16* s = reinterpret_cast<Bf16*>(shared);
  uint32_t r[4];
  LdMatrixX4(s + threadIdx.x * 8 + 8, r);  // Lane 31's row ends 16 bytes past the 512.
  out[threadIdx.x] = static_cast<float>(r[0]);
}

TEST(CudaEmulatorDeathTest, LdMatrixRowsOutsideDynamicSharedMemory) {
  DeviceArray<float> out(32, "out");
  EXPECT_EXIT(LdMatrixPastSharedKernel<<<1, 32, 512>>>(out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus),
              "outside the block's dynamic shared memory");
}

__global__ void ConvertKernel(float x, uint32_t* out) {
  uint32_t packed;
  asm volatile("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(x), "f"(x));
  out[threadIdx.x] = packed;
}

TEST(CudaEmulatorDeathTest, PtxItDoesNotEmulate) {
  DeviceArray<uint32_t> out(32, "out");
  EXPECT_EXIT(ConvertKernel<<<1, 32>>>(1.0f, out.data()),
              ::testing::ExitedWithCode(kFatalExitStatus),
              "cvt.rn.bf16x2.f32.*instruction not emulated");
}

__global__ void ReadPastKernel(const float* x, float* out) {
  out[threadIdx.x] = x[threadIdx.x + 64];
}

TEST(CudaEmulatorDeathTest, ReadsPastTheEndOfADeviceArray) {
  DeviceArray<float> x(64, "x"), out(32, "out");  // 256 bytes: the next page is inaccessible.
  if (kUsesAddressSanitizer) {
    EXPECT_DEATH(ReadPastKernel<<<1, 32>>>(x.data(), out.data()), "heap-buffer-overflow");
  } else {
    EXPECT_EXIT(ReadPastKernel<<<1, 32>>>(x.data(), out.data()), ::testing::KilledBySignal(SIGSEGV),
                "");
  }
}

}  // namespace
}  // namespace usine::testing::cuda_emulator
