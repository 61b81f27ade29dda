// Matrix product, row-major: c <- alpha * op(a) * op(b) + beta * c (+ bias on every row),
// where op(x) is x or its transpose, and beta scales an addend instead of c where one is given
// (MatmulOptions::addend). Execution contract: kernels.h.
//
// Shapes: op(a) is [M, K], op(b) is [K, N], c is [M, N], bias is [N]. Without transpose_a,
// `a` and `c` may have more dimensions, flattened into rows ([B, T, K] x [K, N] -> [B, T, N]).
// dtypes: cpu: all f32 or all f64 (OpenBLAS sgemm, dgemm). CUDA: all f32, or a and b bf16
// with c and bias bf16 or f32, accumulated in f32 (cuBLASLt; the bias is fused as an
// epilogue). All-f32 products compute in the process's F32MatmulPrecision() (below).
// On CUDA a bf16 c may also take GELU, or its derivative, as an epilogue (MatmulEpilogue).
//
//   RETURN_IF_ERROR(Matmul(x, w, y, {.transpose_b = true, .bias = &b}, stream));  // y = x w^T + b
//   RETURN_IF_ERROR(Matmul(x, w, y, {.transpose_b = true, .beta = 1, .addend = &r}, stream));
//                                                                                // y = r + x w^T
//   RETURN_IF_ERROR(Matmul(dy, x, dw, {.transpose_a = true, .beta = 1}, stream)); // dw += dy^T x
#ifndef USINE_RUNTIME_KERNELS_MATMUL_H_
#define USINE_RUNTIME_KERNELS_MATMUL_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

// What a product does to its result r = alpha op(a) op(b) + beta c (+ bias) (the addend in c's
// place where one is given) before c holds it.
enum class MatmulEpilogue {
  kNone,  // c <- r. The default.
  // c <- gelu(r), GPT-2's tanh approximation computed on the f32 r, and *gelu_input <- r (what
  // GELU's backward pass reads). cuBLASLt's GELU_AUX(_BIAS) epilogue: CUDA, a and b bf16, c,
  // bias and *gelu_input bf16, no batch (Matmul only). Its GELU is cuBLASLt's own tanh
  // approximation, not usine's kernel (cuda_gelu.h): close to it, not bit for bit, and perhaps
  // several bf16 steps apart where |gelu| is small (the negative tail). Unimplemented where
  // cuBLASLt has no such product (the last dimension of c not a multiple of 8, or no
  // algorithm); a misaligned gelu_input view may be refused. Elsewhere a layer runs the
  // product and then a GELU kernel.
  kGelu,
  // c <- r * gelu'(*gelu_input), elementwise, the derivative of kGelu's GELU in f32 on the f32 r:
  // the gradient of a GELU's input from the product that makes the gradient of its output (the
  // MLP's, from c_proj's input-gradient product). cuBLASLt's DGELU epilogue: CUDA, a, b, c and
  // *gelu_input bf16, no bias, no addend, beta 0, no batch. Unimplemented where cuBLASLt has
  // no such product (as kGelu); elsewhere the product and then a GELU-backward kernel.
  kGeluGradient,
};

struct MatmulOptions {
  bool transpose_a = false;      // Default: a is [M, K].
  bool transpose_b = false;      // Default: b is [K, N].
  float alpha = 1.0f;            // Default: 1.
  float beta = 0.0f;             // Default: 0 (c is overwritten; its old values are ignored).
  const Tensor* bias = nullptr;  // Default: none. Added after alpha/beta.
  MatmulEpilogue epilogue = MatmulEpilogue::kNone;  // Default: none.
  // kGelu's second output (c's shape, dtype and device, overlapping no other operand), or
  // kGeluGradient's third input (c's shape, dtype and device, not overlapping c).
  const Tensor* gelu_input = nullptr;
  // What beta scales in place of c's old values: c <- alpha op(a) op(b) + beta addend
  // (+ bias), so that a sum lands in a new tensor without a pass of its own (a residual stream
  // plus a layer's output). c's shape, dtype and device; c itself, or overlapping neither c nor
  // gelu_input (it may share memory with a, b or the bias, which are read as it is).
  // Matmul only. On CUDA cuBLASLt's C operand apart from its D (c); on the cpu each thread's
  // piece of c is copied from it before the product adds into it. Default: none (c itself).
  const Tensor* addend = nullptr;
};

// REQUIRES: c does not overlap a, b or bias.
[[nodiscard]] absl::Status Matmul(const Tensor& a, const Tensor& b, const Tensor& c,
                                  const MatmulOptions& options = {},
                                  const Stream& stream = Stream::Host());

// `batch` independent products of equal shapes, one after another in memory:
// c[i] <- alpha * op(a[i]) * op(b[i]) + beta * c[i] for i < batch, where a is [batch, M, K]
// ([batch, K, M] with transpose_a), b is [batch, K, N] ([batch, N, K] with transpose_b) and c is
// [batch, M, N]. The dtypes and precision are Matmul's; there is no bias. On CUDA one cuBLASLt
// call (a strided batch) whatever the batch, instead of one per product: attention's
// per-head products are many and small, and each call costs microseconds on the host.
//
//   RETURN_IF_ERROR(BatchedMatmul(q, k, scores, {.transpose_b = true, .alpha = scale}, stream));
//
// InvalidArgument when c overlaps a or b, or for a bias, an epilogue or an addend.
[[nodiscard]] absl::Status BatchedMatmul(const Tensor& a, const Tensor& b, const Tensor& c,
                                         const MatmulOptions& options = {},
                                         const Stream& stream = Stream::Host());

// `x` as the products of F32MatmulPrecision() read it: on CUDA under kBf16, an f32 `x` rounded
// to bf16 in a new bf16 tensor ordered on `stream`; otherwise `x` itself (f32 and TF32 round
// nothing ahead, and the cpu's bf16 emulation rounds inside Matmul). Matmul casts its f32
// operands on every call; a layer that uses one operand in several products (an input in the
// forward pass and the weight gradient, an output gradient in two products) rounds it once
// and passes the result, which Matmul takes as it is: the same bits, one cast instead of two.
//
//   ASSIGN_OR_RETURN(Tensor dy16, ProductOperand(dy, stream));
//   RETURN_IF_ERROR(Matmul(dy16, x16, dw, {.transpose_a = true, .beta = 1}, stream));
//   RETURN_IF_ERROR(Matmul(dy16, w16, dx, {}, stream));
[[nodiscard]] absl::StatusOr<Tensor> ProductOperand(const Tensor& x,
                                                    const Stream& stream = Stream::Host());

// The dtype of ProductOperand(x) for an `x` of `dtype` on `device`: bf16 for f32 on CUDA under
// kBf16, else `dtype`. For a layer that writes its output as the next product's operand at
// once, and for the product's layer, which takes such an input.
DType ProductOperandDType(DType dtype, Device device);

// The cpu's emulation of a product written in ProductOperandDType (bf16 on CUDA, where
// cuBLASLt rounds its f32 accumulators to nearest, ties to even): under kBf16, the elements of
// an f32 `c` on the cpu rounded in place to the bf16 values they stand for; nothing for any
// other `c` or precision. For a reader that computes in f32 from such an output (the loss from
// bf16 logits), so that the cpu reads the values CUDA does.
[[nodiscard]] absl::Status EmulateProductOperandOutput(const Tensor& c);

// Where a kernel that produces `x` writes ProductOperand(x) itself, with no f32 pass and cast
// between: `x` itself wherever ProductOperand(x) is `x`; on CUDA under kBf16, for an f32 `x`, a
// new bf16 tensor of x's shape on its device, ordered on `stream`, unwritten.
//
//   ASSIGN_OR_RETURN(Tensor dlogits, ProductOperandBuffer(logits, stream));  // maybe logits
//   ... a kernel reads logits and writes their gradient to dlogits ...
[[nodiscard]] absl::StatusOr<Tensor> ProductOperandBuffer(const Tensor& x,
                                                          const Stream& stream = Stream::Host());

// What products of f32 operands (a and b f32) compute in, process-wide, like PyTorch's
// torch.set_float32_matmul_precision. c and the accumulation stay f32 in every mode.
enum class MatmulPrecision {
  // f32 (cpu: sgemm; CUDA: f32 on the CUDA cores, results close to the cpu's). The default.
  kF32,
  // CUDA: operands rounded to TF32 (10-bit mantissas) on the tensor cores, relative errors
  // near 1e-3 and several times the f32 rate. The cpu computes in f32.
  kTf32,
  // a and b rounded to bf16 (to nearest, ties to even; 8-bit mantissas) and their products
  // accumulated in f32: on CUDA the bf16 tensor cores (cuBLASLt, twice TF32's rate), after a
  // cast of each operand into a bf16 temporary on the call's stream. The cpu rounds the same
  // way and runs sgemm on the rounded values (products of bf16 values are exact in f32), an
  // emulation that is slower than f32: the reference that CUDA runs are checked against.
  kBf16,
};
absl::string_view MatmulPrecisionName(MatmulPrecision precision);  // "f32", "tf32", "bf16"
// The precision of a name that MatmulPrecisionName gives; nullopt for any other.
std::optional<MatmulPrecision> MatmulPrecisionNamed(absl::string_view name);

// Sets or reads the process-wide precision of f32 products; products of bf16 operands are
// not affected. Thread-safe; a product reads it once, when it is called.
void SetF32MatmulPrecision(MatmulPrecision precision);
MatmulPrecision F32MatmulPrecision();

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_MATMUL_H_
