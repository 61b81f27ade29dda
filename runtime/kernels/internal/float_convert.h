// Loading f32/bf16/f16 elements as float and storing floats back, rounding to nearest even.
// Plain C++17 with no Abseil, so that host code and CUDA kernels (.cu) share it.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_CONVERT_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_CONVERT_H_

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

}  // namespace usine::kernels_internal

#endif  // USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_CONVERT_H_
