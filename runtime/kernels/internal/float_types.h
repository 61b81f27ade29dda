// Loading and storing f32/bf16/f16 elements as float, and visiting the C++ type of a
// floating DType. Host and device.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_TYPES_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_TYPES_H_

#include "runtime/core/dtype.h"
#include "runtime/core/float16.h"

namespace usine::kernels_internal {

USINE_HOST_DEVICE inline float ToFloat(float v) { return v; }
USINE_HOST_DEVICE inline float ToFloat(BFloat16 v) { return v.ToFloat(); }
USINE_HOST_DEVICE inline float ToFloat(Float16 v) { return v.ToFloat(); }

template <typename T>
USINE_HOST_DEVICE inline T FromFloat(float v);
template <>
USINE_HOST_DEVICE inline float FromFloat<float>(float v) {
  return v;
}
template <>
USINE_HOST_DEVICE inline BFloat16 FromFloat<BFloat16>(float v) {
  return BFloat16::FromFloat(v);
}
template <>
USINE_HOST_DEVICE inline Float16 FromFloat<Float16>(float v) {
  return Float16::FromFloat(v);
}

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) for the C++ type T of a floating dtype.
// REQUIRES: IsFloatingPoint(dtype).
template <typename Fn>
decltype(auto) VisitFloatType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kBF16:
      return fn(TypeTag<BFloat16>{});
    case DType::kF16:
      return fn(TypeTag<Float16>{});
    default:
      return fn(TypeTag<float>{});
  }
}

}  // namespace usine::kernels_internal

#endif  // USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_TYPES_H_
