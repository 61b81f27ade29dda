// Warp-level bf16 tensor-core primitives (sm_80 and later): the mma.sync m16n8k16 product with
// f32 accumulators, ldmatrix loads of its operands from shared memory, and cp.async copies from
// global into shared memory. Thin wrappers over the PTX instructions of the same names, so that
// kernels name what they do; every lane of the warp must call the warp-wide ones (Mma, the
// LdMatrix ones) together. Only for .cu files. The ones that touch memory (LdMatrix, CpAsync)
// tell the compiler so ("memory" clobbers), so it moves no load or store of the caller's
// across them (the PTX of the flash kernels is the same with them as without).
//
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), for lane
// l with g = l / 4 and i = l % 4; a register of two bf16 holds the lower column (or row) in its
// low 16 bits:
//   A, 16 x 16, a[0] = A[g][2i, 2i+1]    a[1] = A[g+8][2i, 2i+1]
//               a[2] = A[g][2i+8, 2i+9]  a[3] = A[g+8][2i+8, 2i+9]
//   B, 16 x 8,  b[0] = B[2i, 2i+1][g]    b[1] = B[2i+8, 2i+9][g]
//   C, D 16 x 8 f32: c[0], c[1] = C[g][2i, 2i+1]    c[2], c[3] = C[g+8][2i, 2i+1]
//
//   uint32_t a[4], b[4];
//   LdMatrixX4(block + (lane % 16) * stride + lane / 16 * 8, a);  // a 16 x 16 row-major block
//   Mma(a, b[0], b[1], acc);                                     // acc += A B
#ifndef USINE_RUNTIME_NN_INTERNAL_CUDA_MMA_CUH_
#define USINE_RUNTIME_NN_INTERNAL_CUDA_MMA_CUH_

#include <cstdint>

#include <cuda_bf16.h>

namespace usine::nn_internal::cuda {

// The shared-memory address of a generic pointer into shared memory.
__device__ inline uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// d += A B for the warp's fragments a (A, 16 x 16 bf16), b0 and b1 (B, 16 x 8 bf16) and d (16 x
// 8 f32), the products summed in f32 (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32).
__device__ inline void Mma(const uint32_t (&a)[4], uint32_t b0, uint32_t b1, float (&d)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory (ldmatrix.sync.aligned.m8n8.x4.shared.b16): lanes
// 8 j to 8 j + 7 give the addresses of matrix j's rows 0 to 7 (16 bytes each, 16-byte aligned),
// and r[j] of lane l is matrix j's row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1. For a 16 x 16
// row-major block whose lane l gives row l % 16 at column 8 (l / 16), r is its A fragment.
__device__ inline void LdMatrixX4(const __nv_bfloat16* row, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(row))
               : "memory");
}

// LdMatrixX4 transposed (.trans): r[j] of lane l is matrix j's column l / 4, rows 2 (l % 4) and
// 2 (l % 4) + 1, the lower row in the low half.
__device__ inline void LdMatrixX4Trans(const __nv_bfloat16* row, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(row))
               : "memory");
}

// Two f32 values rounded to bf16 (to nearest, ties to even) in one register, `lo` in the low
// half: an A or B fragment register from two accumulator elements.
__device__ inline uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// Starts copying 16 bytes from global `from` to shared `to` (both 16-byte aligned) without
// waiting (cp.async.cg.shared.global): with `zero`, writes 16 zero bytes instead and reads
// nothing (`from` must still be a valid address). The copy is ordered by CpAsyncCommit and
// CpAsyncWait: its bytes are in `to` for this thread once a CpAsyncWait has waited for its group,
// and for the block's other threads after a __syncthreads() that follows that wait.
__device__ inline void CpAsync16(void* to, const void* from, bool zero) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SharedAddress(to)),
               "l"(from), "r"(zero ? 0 : 16)
               : "memory");
}

// Closes this thread's group of the copies started since its last commit.
__device__ inline void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most kPending of this thread's committed groups are still copying (0: all).
template <int kPending>
__device__ inline void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

}  // namespace usine::nn_internal::cuda

#endif  // USINE_RUNTIME_NN_INTERNAL_CUDA_MMA_CUH_
