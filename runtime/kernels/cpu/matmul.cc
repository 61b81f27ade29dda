// cpu matrix product through OpenBLAS's sgemm (row-major).
#include <cblas.h>

#include "runtime/kernels/internal/backends.h"

namespace usine::kernels_internal::cpu {

void Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
            const MatmulDims& d) {
  const int m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
  float* pc = static_cast<float*>(c.raw_data());
  if (k == 0) {  // sgemm rejects a zero leading dimension; the product is empty.
    for (int64_t i = 0; i < d.m * d.n; ++i) pc[i] = o.beta == 0.0f ? 0.0f : o.beta * pc[i];
  } else {
    cblas_sgemm(CblasRowMajor, o.transpose_a ? CblasTrans : CblasNoTrans,
                o.transpose_b ? CblasTrans : CblasNoTrans, m, n, k, o.alpha,
                static_cast<const float*>(a.raw_data()), o.transpose_a ? m : k,
                static_cast<const float*>(b.raw_data()), o.transpose_b ? k : n, o.beta, pc, n);
  }
  if (o.bias != nullptr) {
    const float* bias = static_cast<const float*>(o.bias->raw_data());
    for (int64_t i = 0; i < d.m; ++i) {
      float* row = pc + i * d.n;
      for (int64_t j = 0; j < d.n; ++j) row[j] += bias[j];
    }
  }
}

}  // namespace usine::kernels_internal::cpu
