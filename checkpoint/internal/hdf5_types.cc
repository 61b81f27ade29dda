#include "checkpoint/internal/hdf5_types.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {
namespace {

// A 16-bit IEEE-style float: sign at bit 15, `exponent_bits` of exponent, the rest mantissa.
absl::StatusOr<H5Handle> Float16Type(size_t exponent_bits, size_t bias) {
  ASSIGN_OR_RETURN(H5Handle type, H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_IEEE_F32LE)), H5Tclose));
  const size_t mantissa_bits = 15 - exponent_bits;
  RETURN_IF_ERROR(USINE_HDF5_STATUS(
      H5Tset_fields(type.id(), 15, mantissa_bits, exponent_bits, 0, mantissa_bits)));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_precision(type.id(), 16)));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_size(type.id(), 2)));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_ebias(type.id(), bias)));
  return type;
}

}  // namespace

absl::StatusOr<H5Handle> FileTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_IEEE_F32LE)), H5Tclose);
    case DType::kBF16:
      return Float16Type(8, 127);
    case DType::kF16:
      return Float16Type(5, 15);
    case DType::kI32:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_I32LE)), H5Tclose);
    case DType::kI64:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_I64LE)), H5Tclose);
    case DType::kU16:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_U16LE)), H5Tclose);
    case DType::kU8:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_U8LE)), H5Tclose);
    case DType::kF64:
      return H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_IEEE_F64LE)), H5Tclose);
  }
  return absl::InvalidArgumentError("unknown dtype");
}

absl::StatusOr<DType> DTypeOfFileType(hid_t type) {
  for (DType dtype : kAllDTypes) {
    ASSIGN_OR_RETURN(H5Handle candidate, FileTypeOf(dtype));
    const htri_t equal = H5Tequal(type, candidate.id());
    RETURN_IF_ERROR(USINE_HDF5_STATUS(equal));
    if (equal > 0) return dtype;
  }
  return absl::InvalidArgumentError(
      "a datatype that is none of usine's (f32, bf16, f16, i32, i64, u16, u8, f64 little-endian)");
}

}  // namespace usine::checkpoint_internal
