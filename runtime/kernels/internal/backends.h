// The cpu and CUDA implementations behind the public operations. Callers (the public
// functions) have already checked every argument; these only compute.
// cpu functions run in the calling thread. CUDA functions enqueue on `stream` (nullptr: the
// default stream) of the current device and return launch errors only.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_BACKENDS_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_BACKENDS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/matmul.h"

namespace usine::kernels_internal {

// The fill value converted to the tensor's element type, as raw bits (low DTypeSize bytes).
using FillBits = uint64_t;

// Problem sizes of a matmul after flattening, in row-major terms: op(a) is [m, k],
// op(b) is [k, n], c is [m, n]; `batch` such products, each operand's matrices one after
// another (BatchedMatmul).
struct MatmulDims {
  int64_t m = 0, n = 0, k = 0;
  int64_t batch = 1;
  // F32MatmulPrecision(), read once as the product is called (its descriptor and the cache
  // key of its algorithm must agree).
  MatmulPrecision f32_precision = MatmulPrecision::kF32;
};

namespace cpu {
void Fill(const Tensor& t, FillBits bits);
void Cast(const Tensor& src, const Tensor& dst);
void Scale(const Tensor& x, float alpha);
void Axpy(float alpha, const Tensor& x, const Tensor& y);
void Add(const Tensor& a, const Tensor& b, const Tensor& out);
float Sum(const Tensor& x);
float SumOfSquares(const Tensor& x);
void Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& options,
            const MatmulDims& dims);
void RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high);
void RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev);
}  // namespace cpu

namespace cuda {
absl::Status Fill(const Tensor& t, FillBits bits, StreamHandle stream);
// Each t <- bits; the ts share one dtype.
absl::Status Fill(absl::Span<const Tensor> ts, FillBits bits, StreamHandle stream);
absl::Status Cast(const Tensor& src, const Tensor& dst, StreamHandle stream);
absl::Status Scale(const Tensor& x, float alpha, StreamHandle stream);
// Each x <- alpha x, with Scale's bits; xs of one dtype.
absl::Status Scale(absl::Span<const Tensor> xs, float alpha, StreamHandle stream);
absl::Status Axpy(float alpha, const Tensor& x, const Tensor& y, StreamHandle stream);
absl::Status Add(const Tensor& a, const Tensor& b, const Tensor& out, StreamHandle stream);
// `out` is an f32 scalar on the device; `square_root` makes it sqrt(sum of squares).
absl::Status Sum(const Tensor& x, const Tensor& out, bool squares, bool square_root,
                 StreamHandle stream);
// out (f32 [xs.size()] on the device) <- each x's L2 norm, with Sum's bits; xs of one dtype.
absl::Status L2Norms(absl::Span<const Tensor> xs, const Tensor& out, StreamHandle stream);
// REQUIRES: no addend when dims.k == 0 (Matmul copies it into c first).
absl::Status Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& options,
                    const MatmulDims& dims, StreamHandle stream);
absl::Status RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high,
                           StreamHandle stream);
absl::Status RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev,
                          StreamHandle stream);
// Any copy with at least one CUDA side (cudaMemcpyAsync / cudaMemcpyPeerAsync).
absl::Status Copy(const Tensor& src, const Tensor& dst, StreamHandle stream);
}  // namespace cuda

}  // namespace usine::kernels_internal

#endif  // USINE_RUNTIME_KERNELS_INTERNAL_BACKENDS_H_
