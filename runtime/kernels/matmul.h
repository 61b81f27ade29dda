// Matrix product, row-major: c <- alpha * op(a) * op(b) + beta * c (+ bias on every row),
// where op(x) is x or its transpose. Execution contract: kernels.h.
//
// Shapes: op(a) is [M, K], op(b) is [K, N], c is [M, N], bias is [N]. Without transpose_a,
// `a` and `c` may have more dimensions, flattened into rows ([B, T, K] x [K, N] -> [B, T, N]).
// dtypes: cpu: all f32 or all f64 (OpenBLAS sgemm, dgemm). CUDA: all f32 (f32 compute), or
// a and b bf16 with c and bias bf16 or f32, accumulated in f32 (cuBLASLt; the bias is fused
// as an epilogue).
//
//   RETURN_IF_ERROR(Matmul(x, w, y, {.transpose_b = true, .bias = &b}, stream));  // y = x w^T + b
//   RETURN_IF_ERROR(Matmul(dy, x, dw, {.transpose_a = true, .beta = 1}, stream)); // dw += dy^T x
#ifndef USINE_RUNTIME_KERNELS_MATMUL_H_
#define USINE_RUNTIME_KERNELS_MATMUL_H_

#include "absl/status/status.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

struct MatmulOptions {
  bool transpose_a = false;      // Default: a is [M, K].
  bool transpose_b = false;      // Default: b is [K, N].
  float alpha = 1.0f;            // Default: 1.
  float beta = 0.0f;             // Default: 0 (c is overwritten; its old values are ignored).
  const Tensor* bias = nullptr;  // Default: none. Added after alpha/beta.
};

// REQUIRES: c does not overlap a, b or bias.
[[nodiscard]] absl::Status Matmul(const Tensor& a, const Tensor& b, const Tensor& c,
                                  const MatmulOptions& options = {},
                                  const Stream& stream = Stream::Host());

// Whether CUDA products of f32 tensors run in TF32 on the tensor cores (operands rounded to
// 10-bit mantissas, products accumulated in f32: relative errors near 1e-3 instead of 1e-6,
// and several times the f32 rate). Process-wide, like PyTorch's
// torch.backends.cuda.matmul.allow_tf32; default off, so that CUDA f32 results stay close to
// the cpu's. No effect on the cpu or on bf16/f16 operands. Thread-safe.
void SetCudaMatmulTf32(bool enabled);
bool CudaMatmulTf32();

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_MATMUL_H_
