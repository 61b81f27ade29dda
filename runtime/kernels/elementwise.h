// Elementwise operations. Execution contract: kernels.h. Arithmetic on bf16/f16 tensors
// is done in f32 and rounded once to the element type (round to nearest even).
//
//   RETURN_IF_ERROR(Fill(bias, 0.0));
//   RETURN_IF_ERROR(Axpy(-lr, grad, param));          // param += -lr * grad
//   RETURN_IF_ERROR(Cast(master_f32, weights_bf16));
#ifndef USINE_RUNTIME_KERNELS_ELEMENTWISE_H_
#define USINE_RUNTIME_KERNELS_ELEMENTWISE_H_

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

// Every element of `t` <- value, in any dtype. For integer dtypes `value` must be an
// integer in the dtype's range; for floating dtypes it is rounded to the dtype.
[[nodiscard]] absl::Status Fill(const Tensor& t, double value,
                                const Stream& stream = Stream::Host());
// Fill of every t, the same bits: the ts share one dtype and one device. On CUDA one launch per
// 48 tensors (a model's gradients, zeroed every step), not a memset each.
[[nodiscard]] absl::Status Fill(absl::Span<const Tensor> ts, double value,
                                const Stream& stream = Stream::Host());

// dst <- src converted; both f32, bf16 or f16, same shape. In-place (src == dst) only when
// the dtypes are equal.
[[nodiscard]] absl::Status Cast(const Tensor& src, const Tensor& dst,
                                const Stream& stream = Stream::Host());

// x <- alpha * x. x is f32, bf16 or f16.
[[nodiscard]] absl::Status Scale(const Tensor& x, float alpha,
                                 const Stream& stream = Stream::Host());
// Scale of every x, the same bits: the xs share one dtype and one device. On CUDA one launch
// per 48 tensors (a model's gradients, clipped), not one each.
[[nodiscard]] absl::Status Scale(absl::Span<const Tensor> xs, float alpha,
                                 const Stream& stream = Stream::Host());

// y <- alpha * x + y. Same dtype (f32, bf16, f16) and shape.
[[nodiscard]] absl::Status Axpy(float alpha, const Tensor& x, const Tensor& y,
                                const Stream& stream = Stream::Host());

// out <- a + b. Same dtype (f32, bf16, f16) and shape; out may be a or b.
[[nodiscard]] absl::Status Add(const Tensor& a, const Tensor& b, const Tensor& out,
                               const Stream& stream = Stream::Host());

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_ELEMENTWISE_H_
