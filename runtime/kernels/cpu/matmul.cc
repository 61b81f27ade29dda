// cpu matrix product through OpenBLAS's sgemm and dgemm (row-major).
#include <cblas.h>

#include "runtime/kernels/cpu_gemm.h"
#include "runtime/kernels/internal/backends.h"

namespace usine::kernels_internal::cpu {
namespace {

void Gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a,
          int lda, const float* b, int ldb, float beta, float* c) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
}

void Gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const double* a,
          int lda, const double* b, int ldb, float beta, double* c) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
}

template <typename T>
void TypedMatmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
                 const MatmulDims& d) {
  const int m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
  T* pc = static_cast<T*>(c.raw_data());
  if (k == 0) {  // gemm rejects a zero leading dimension; the product is empty.
    for (int64_t i = 0; i < d.m * d.n; ++i) pc[i] = o.beta == 0.0f ? T(0) : o.beta * pc[i];
  } else {
    Gemm(o.transpose_a ? CblasTrans : CblasNoTrans, o.transpose_b ? CblasTrans : CblasNoTrans, m, n,
         k, o.alpha, static_cast<const T*>(a.raw_data()), o.transpose_a ? m : k,
         static_cast<const T*>(b.raw_data()), o.transpose_b ? k : n, o.beta, pc);
  }
  if (o.bias != nullptr) {
    const T* bias = static_cast<const T*>(o.bias->raw_data());
    for (int64_t i = 0; i < d.m; ++i) {
      T* row = pc + i * d.n;
      for (int64_t j = 0; j < d.n; ++j) row[j] += bias[j];
    }
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
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

void CpuGemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
             const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
             int64_t ldc) {
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

}  // namespace usine
