// The GELU kernels of a tensor's device, for the layers that run a GELU (gelu.h, and a linear
// layer with GELU as its activation, linear_product.h): cpu_gelu.h on the cpu (f32 or f64),
// cuda_layers.h on CUDA. Checks nothing beyond what the layer already checked; on CUDA the work
// is enqueued on the layers' stream.
//
//   RETURN_IF_ERROR(GeluForwardOn(h, y));
//   RETURN_IF_ERROR(GeluBackwardOn(h, dy, dh));
#ifndef USINE_RUNTIME_NN_INTERNAL_GELU_KERNELS_H_
#define USINE_RUNTIME_NN_INTERNAL_GELU_KERNELS_H_

#include "absl/status/status.h"

#include "runtime/core/tensor.h"

namespace usine::nn_internal {

// y = gelu(x). Same shapes and device; on the cpu one dtype, on CUDA x f32 and y f32 or bf16.
[[nodiscard]] absl::Status GeluForwardOn(const Tensor& x, const Tensor& y);
// dx = dy * gelu'(x). Same shapes and device; on the cpu one dtype, on CUDA as
// CudaGeluBackward.
[[nodiscard]] absl::Status GeluBackwardOn(const Tensor& x, const Tensor& dy, const Tensor& dx);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_GELU_KERNELS_H_
