#include "runtime/nn/internal/gelu_kernels.h"

#include "runtime/nn/internal/cpu_gelu.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/internal/real_types.h"

namespace usine::nn_internal {

absl::Status GeluForwardOn(const Tensor& x, const Tensor& y) {
  if (x.device().is_cuda()) return CudaGeluForward(x, y);
  VisitReal(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    GeluForward(Elements<T>(x), x.numel(), Elements<T>(y));
  });
  return absl::OkStatus();
}

absl::Status GeluBackwardOn(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  if (x.device().is_cuda()) return CudaGeluBackward(x, dy, dx);
  VisitReal(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    GeluBackward(Elements<T>(x), Elements<T>(dy), dy.numel(), Elements<T>(dx));
  });
  return absl::OkStatus();
}

}  // namespace usine::nn_internal
