// Visiting the C++ type of a floating DType (host code). The element conversions it pairs
// with are in float_convert.h.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_TYPES_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_FLOAT_TYPES_H_

#include "runtime/core/dtype.h"
#include "runtime/core/float16.h"
#include "runtime/kernels/internal/float_convert.h"

namespace usine::kernels_internal {

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
