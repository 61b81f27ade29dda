// Reductions to a scalar, in a fixed order: the same input on the same device gives the
// same bits on every run, whatever the thread count. Execution contract: kernels.h.
// cpu: f64 sums over blocks of 1024 elements, combined pairwise. CUDA: f32 sums over a fixed
// grid (a function of the element count only), each block's partial reduced in a second
// fixed-shape pass. The two devices agree to f32 rounding, not bit for bit.
//
//   ASSIGN_OR_RETURN(Tensor norm, Tensor::Empty({}, DType::kF32, grads.device()));
//   RETURN_IF_ERROR(L2Norm(grads, norm, stream));   // stays on the device, no sync
//   ASSIGN_OR_RETURN(double total, SumToHost(loss)); // synchronous
#ifndef USINE_RUNTIME_KERNELS_REDUCE_H_
#define USINE_RUNTIME_KERNELS_REDUCE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

// out <- sum of x's elements. x is f32, bf16 or f16; out is an f32 tensor of one element
// on x's device.
[[nodiscard]] absl::Status Sum(const Tensor& x, const Tensor& out,
                               const Stream& stream = Stream::Host());

// out <- sqrt(sum of squares of x's elements). Same argument rules as Sum.
[[nodiscard]] absl::Status L2Norm(const Tensor& x, const Tensor& out,
                                  const Stream& stream = Stream::Host());

// out[i] <- L2Norm(xs[i]) for every i, the same bits: out is an f32 tensor of xs.size()
// elements on the xs' device, and the xs share one dtype (L2Norm's). On CUDA the norms of
// many tensors (a model's gradients) take two launches per 48 tensors, not two each.
[[nodiscard]] absl::Status L2Norms(absl::Span<const Tensor> xs, const Tensor& out,
                                   const Stream& stream = Stream::Host());

// Synchronous conveniences that return the value on the host.
[[nodiscard]] absl::StatusOr<float> SumToHost(const Tensor& x);
[[nodiscard]] absl::StatusOr<float> L2NormToHost(const Tensor& x);

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_REDUCE_H_
