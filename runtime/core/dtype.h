// Element types of tensors.
//
//   DType t = DType::kBF16;
//   size_t bytes = DTypeSize(t) * numel;           // 2 * numel
//   ASSIGN_OR_RETURN(DType parsed, ParseDType("f32"));
//   static_assert(kDTypeOf<float> == DType::kF32);
//
// f64 is a host-side type for reference computations (the layers' finite-difference tests):
// tensors of it can be made, filled, copied, multiplied on the cpu (Matmul), gathered,
// broadcast and checkpointed, but the other kernels and reductions take f32, bf16 and f16.
#ifndef USINE_RUNTIME_CORE_DTYPE_H_
#define USINE_RUNTIME_CORE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <ostream>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/float16.h"

namespace usine {

enum class DType : uint8_t { kF32, kBF16, kF16, kI32, kI64, kU16, kU8, kF64 };

inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32,
                                       DType::kI64, DType::kU16,  DType::kU8,  DType::kF64};

// Bytes per element.
constexpr size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kBF16:
    case DType::kF16:
    case DType::kU16:
      return 2;
    case DType::kI64:
    case DType::kF64:
      return 8;
    case DType::kU8:
      return 1;
  }
  return 0;
}

// f32, bf16 and f16: the types of the floating kernels (f64 is not one, see above).
constexpr bool IsFloatingPoint(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16;
}

// "f32", "bf16", "f16", "i32", "i64", "u16", "u8", "f64".
absl::string_view DTypeName(DType dtype);

// Inverse of DTypeName; an unknown name is InvalidArgument naming it.
absl::StatusOr<DType> ParseDType(absl::string_view name);

std::ostream& operator<<(std::ostream& os, DType dtype);

// The DType of a C++ element type.
template <typename T>
inline constexpr DType kDTypeOf = [] {
  static_assert(sizeof(T) == 0, "no DType for this C++ type");
  return DType::kU8;
}();
template <>
inline constexpr DType kDTypeOf<float> = DType::kF32;
template <>
inline constexpr DType kDTypeOf<double> = DType::kF64;
template <>
inline constexpr DType kDTypeOf<BFloat16> = DType::kBF16;
template <>
inline constexpr DType kDTypeOf<Float16> = DType::kF16;
template <>
inline constexpr DType kDTypeOf<int32_t> = DType::kI32;
template <>
inline constexpr DType kDTypeOf<int64_t> = DType::kI64;
template <>
inline constexpr DType kDTypeOf<uint16_t> = DType::kU16;
template <>
inline constexpr DType kDTypeOf<uint8_t> = DType::kU8;

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_DTYPE_H_
