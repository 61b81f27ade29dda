// A row-major matrix product on raw cpu arrays with leading dimensions (OpenBLAS sgemm and
// dgemm), for kernels whose operands are strided pieces that Matmul's contiguous tensors
// cannot name, such as one attention head's columns of q|k|v:
//
//   c <- alpha * op(a) * op(b) + beta * c,  op(a) [m, k], op(b) [k, n], c [m, n]
//
// lda, ldb and ldc are the distances between rows as stored. REQUIRES: m, n, k >= 1; the
// arrays hold what the dimensions say; c overlaps neither a nor b. Synchronous. CpuGemm is
// sgemm whatever F32MatmulPrecision() says; CpuGemmInMatmulPrecision follows it.
//
// Threads: usine runs OpenBLAS single-threaded (process-wide, from the first product on) and
// cuts each product, as Matmul's cpu products, into pieces of c over ParallelFor's threads
// (runtime/core/parallel_for.h); inside a ParallelFor body the product runs on the calling
// thread alone. The cut depends on the shape and CpuThreads() only, so the result does too.
#ifndef USINE_RUNTIME_KERNELS_CPU_GEMM_H_
#define USINE_RUNTIME_KERNELS_CPU_GEMM_H_

#include <cstdint>

namespace usine {

void CpuGemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc);
void CpuGemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
             const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
             int64_t ldc);

// CpuGemm as Matmul multiplies f32 tensors, in the process's F32MatmulPrecision (matmul.h):
// with kBf16, on copies of op(a) and op(b) rounded to bf16 (the cpu's emulation of bf16
// products); else CpuGemm itself. For the cpu kernels whose products stand where the CUDA
// path calls Matmul (attention's), so that the two round alike. f64: CpuGemm.
void CpuGemmInMatmulPrecision(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                              float beta, float* c, int64_t ldc);
void CpuGemmInMatmulPrecision(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                              double alpha, const double* a, int64_t lda, const double* b,
                              int64_t ldb, double beta, double* c, int64_t ldc);

// The same f32 product on OpenBLAS's own `threads` threads instead of usine's cut: for
// measuring OpenBLAS's rate on this machine (usine bench train). OpenBLAS's thread count is
// process-wide: not for use while other threads run products.
void CpuGemmOnBlasThreads(int threads, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                          int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                          int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_CPU_GEMM_H_
