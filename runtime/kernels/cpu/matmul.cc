// cpu matrix product through OpenBLAS's sgemm and dgemm (row-major), threaded by usine.
//
// OpenBLAS runs single-threaded here: each product is cut into pieces along its longer
// output dimension (rows of c, or columns), one piece per ParallelFor thread, each a
// single-threaded gemm. With OpenBLAS's own threads the process had two thread pools on the
// same cores: OpenBLAS's workers spin (sched_yield) for a while after each product and took
// the cores from the ParallelFor loops that run between products (at two threads on two
// cores those loops ran no faster than on one). Cutting the longer dimension duplicates the
// packing of the smaller operand only. The cut depends on the shape and the thread count
// alone, so the result does too.
#include "runtime/kernels/matmul.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <cblas.h>

#include "runtime/core/float16.h"
#include "runtime/core/parallel_for.h"
#include "runtime/kernels/cpu_gemm.h"
#include "runtime/kernels/internal/backends.h"

namespace usine::kernels_internal::cpu {
namespace {

// Pieces start at multiples of this many rows or columns (whole cache lines of c, whole
// micro-kernel tiles).
constexpr int64_t kCutUnit = 64;
// A piece multiplies at least this many flops: below, the threads' start-up costs more than
// it saves.
constexpr double kMinPieceFlops = 1 << 22;

// OpenBLAS threads nothing: set once, before the first product. OpenBLAS's own workers,
// started when the library loaded, go to sleep after their spin time and stay asleep.
void UseOneBlasThread() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// c[rows, cols) <- alpha op(a) op(b) + beta c (+ bias on every row) for one piece: rows
// [r0, r1) and columns [c0, c1) of c, whose old values are first those of `addend` (laid out as
// c) unless it is null.
template <typename T>
void GemmPiece(bool ta, bool tb, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t k, T alpha,
               const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
               const T* bias, const T* addend) {
  const int64_t rows = r1 - r0, cols = c1 - c0;
  if (rows <= 0 || cols <= 0) return;
  T* piece = c + r0 * ldc + c0;
  if (addend != nullptr) {
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(addend + (r0 + i) * ldc + c0, cols, piece + i * ldc);
    }
  }
  if (k == 0) {  // gemm rejects a zero leading dimension; the product is empty.
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        piece[i * ldc + j] =
            beta == static_cast<T>(0) ? static_cast<T>(0) : beta * piece[i * ldc + j];
      }
    }
  } else {
    // Row r of op(a) starts at a + r * lda, or at column r of a when transposed; column j of
    // op(b) likewise.
    Gemm(ta, tb, rows, cols, k, alpha, ta ? a + r0 : a + r0 * lda, lda, tb ? b + c0 * ldb : b + c0,
         ldb, beta, piece, ldc);
  }
  if (bias != nullptr) {
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) piece[i * ldc + j] += bias[c0 + j];
    }
  }
}

template <typename T>
void ThreadedGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                  const T* bias = nullptr, const T* addend = nullptr) {
  UseOneBlasThread();
  const bool cut_rows = m >= n;
  const int64_t length = cut_rows ? m : n, breadth = cut_rows ? n : m;
  const int64_t units = (length + kCutUnit - 1) / kCutUnit;
  const double unit_flops = 2.0 * static_cast<double>(kCutUnit * breadth * std::max<int64_t>(k, 1));
  const int64_t grain = static_cast<int64_t>(kMinPieceFlops / unit_flops) + 1;
  ParallelFor(units, grain, [&](int64_t begin, int64_t end) {
    const int64_t from = begin * kCutUnit, to = std::min(end * kCutUnit, length);
    if (cut_rows) {
      GemmPiece(ta, tb, from, to, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, addend);
    } else {
      GemmPiece(ta, tb, 0, m, from, to, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, addend);
    }
  });
}

// The products one after another, each cut over the threads.
template <typename T>
void TypedMatmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
                 const MatmulDims& d) {
  for (int64_t i = 0; i < d.batch; ++i) {
    ThreadedGemm<T>(o.transpose_a, o.transpose_b, d.m, d.n, d.k, static_cast<T>(o.alpha),
                    static_cast<const T*>(a.raw_data()) + i * d.m * d.k, o.transpose_a ? d.m : d.k,
                    static_cast<const T*>(b.raw_data()) + i * d.k * d.n, o.transpose_b ? d.k : d.n,
                    static_cast<T>(o.beta), static_cast<T*>(c.raw_data()) + i * d.m * d.n, d.n,
                    o.bias != nullptr ? static_cast<const T*>(o.bias->raw_data()) : nullptr,
                    o.addend != nullptr
                        ? static_cast<const T*>(o.addend->raw_data()) + i * d.m * d.n
                        : nullptr);
  }
}

}  // namespace

void Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
            const MatmulDims& d) {
  if (a.dtype() == DType::kF64) {
    TypedMatmul<double>(a, b, c, o, d);
  } else {
    TypedMatmul<float>(a, b, c, o, d);
  }
}

}  // namespace usine::kernels_internal::cpu

namespace usine {

void CpuGemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc) {
  kernels_internal::cpu::ThreadedGemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb,
                                      beta, c, ldc);
}

void CpuGemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
             const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
             int64_t ldc) {
  kernels_internal::cpu::ThreadedGemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb,
                                      beta, c, ldc);
}

void CpuGemmInMatmulPrecision(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                              float beta, float* c, int64_t ldc) {
  if (F32MatmulPrecision() != MatmulPrecision::kBf16) {
    CpuGemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // The stored [rows, cols] matrix (leading dimension ld), rounded into a dense copy.
  const auto rounded = [](const float* x, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> copy(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        copy[i * cols + j] = BFloat16BitsToFloat(FloatToBFloat16Bits(x[i * ld + j]));
      }
    }
    return copy;
  };
  const std::vector<float> ra = transpose_a ? rounded(a, k, m, lda) : rounded(a, m, k, lda);
  const std::vector<float> rb = transpose_b ? rounded(b, n, k, ldb) : rounded(b, k, n, ldb);
  CpuGemm(transpose_a, transpose_b, m, n, k, alpha, ra.data(), transpose_a ? m : k, rb.data(),
          transpose_b ? k : n, beta, c, ldc);
}

void CpuGemmInMatmulPrecision(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                              double alpha, const double* a, int64_t lda, const double* b,
                              int64_t ldb, double beta, double* c, int64_t ldc) {
  CpuGemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void CpuGemmOnBlasThreads(int threads, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                          int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                          int64_t ldb, float beta, float* c, int64_t ldc) {
  namespace cpu = kernels_internal::cpu;
  cpu::UseOneBlasThread();
  openblas_set_num_threads(threads);
  cpu::Gemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  openblas_set_num_threads(1);
}

}  // namespace usine
