// The HDF5 datatypes that stand for usine's dtypes in a checkpoint (docs/checkpoint-format.md).
// bf16 and f16 are HDF5 floating-point types with their own bit fields (HDF5 1.10 has no
// predefined 16-bit floats), so that h5dump and h5py read numbers; the others are the
// predefined little-endian types.
//
//   ASSIGN_OR_RETURN(H5Handle type, FileTypeOf(DType::kBF16));
//   ASSIGN_OR_RETURN(DType dtype, DTypeOfFileType(H5Dget_type(dataset)));
//
// Same thread rule as hdf5_handle.h.
#ifndef USINE_CHECKPOINT_INTERNAL_HDF5_TYPES_H_
#define USINE_CHECKPOINT_INTERNAL_HDF5_TYPES_H_

#include <hdf5.h>

#include "absl/status/statusor.h"

#include "checkpoint/internal/hdf5_handle.h"
#include "runtime/core/dtype.h"

namespace usine::checkpoint_internal {

// A new datatype (the caller owns it) for `dtype`, little-endian.
[[nodiscard]] absl::StatusOr<H5Handle> FileTypeOf(DType dtype);

// The dtype whose FileTypeOf() equals `type`; InvalidArgument for any other type.
[[nodiscard]] absl::StatusOr<DType> DTypeOfFileType(hid_t type);

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_HDF5_TYPES_H_
