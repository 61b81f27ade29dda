// The element types of the layers (f32 for training, f64 for the finite-difference tests, on
// the cpu only), the checks every layer makes on its tensors, and the stream the layers run on.
#ifndef USINE_RUNTIME_NN_INTERNAL_REAL_TYPES_H_
#define USINE_RUNTIME_NN_INTERNAL_REAL_TYPES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine::nn_internal {

template <typename T>
struct RealTag {
  using type = T;
};

// Calls fn(RealTag<double>{}) for f64 and fn(RealTag<float>{}) otherwise.
// REQUIRES: dtype is f32 or f64 (CheckRealType).
template <typename Fn>
decltype(auto) VisitReal(DType dtype, Fn&& fn) {
  if (dtype == DType::kF64) return fn(RealTag<double>{});
  return fn(RealTag<float>{});
}

// OK when the layers can run on `dtype` and `device`: f32 or f64 on the cpu, f32 on a CUDA
// device of a build with CUDA. Otherwise InvalidArgument (dtype), Unimplemented (f64 on CUDA)
// or FailedPrecondition (CUDA without the CUDA path, or no such device), naming `what`.
[[nodiscard]] absl::Status CheckLayerPlacement(DType dtype, Device device, absl::string_view what);

// CheckLayerPlacement for a loss's logits, which may also be bf16 on a CUDA device: the output
// of the vocabulary projection under bf16 products (ProductOperandDType), which the
// cross-entropy kernels read and compute on in f32.
[[nodiscard]] absl::Status CheckLogitsPlacement(DType dtype, Device device, absl::string_view what);

// The dtype a loss computes in for logits of `dtype`: f32 for bf16, else `dtype`.
inline DType LossDType(DType logits) { return logits == DType::kBF16 ? DType::kF32 : logits; }

// OK when `x` has `dtype`, is on `device`, has rank >= 1 and a last dimension of `last_dim`.
[[nodiscard]] absl::Status CheckLayerInput(const Tensor& x, DType dtype, Device device,
                                           int64_t last_dim, absl::string_view what);

// CheckLayerInput for the input of a layer whose first use of it is a product (Linear, the
// attention's c_attn): `dtype`, or already ProductOperandDType(dtype, device) (matmul.h; bf16 on
// CUDA under bf16 products), as a producer writes it to spare a cast (a layer with an activation,
// LayerNorm::ForwardOperand).
[[nodiscard]] absl::Status CheckProductInput(const Tensor& x, DType dtype, Device device,
                                             int64_t last_dim, absl::string_view what);

// The stream the layers' work on `device` goes on: the host stream for the cpu, and the
// device's default (legacy) stream for CUDA, where every nn kernel and the layers' Matmul
// calls are enqueued without waiting. Tensors the layers allocate are ordered on that same
// stream, so no further synchronisation is needed between layers; results reach the host
// through a synchronous Copy.
inline Stream LayerStream(Device device) { return Stream::Default(device); }

// The elements of a checked cpu tensor.
template <typename T>
T* Elements(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_REAL_TYPES_H_
