#include "checkpoint/internal/stored_tensor.h"

#include <vector>

#include "absl/strings/str_cat.h"

#include "checkpoint/internal/hdf5_types.h"
#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {

absl::StatusOr<FormatInfo> CheckFormat(const H5File& file) {
  const hid_t root = file.file.id();
  absl::StatusOr<std::string> format = ReadStringAttribute(file, root, "/", "usine_format");
  if (!format.ok() || *format != kFormatName) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, " is an HDF5 file but not a usine checkpoint (no usine_format attribute '",
        kFormatName, "' on /)"));
  }
  FormatInfo info;
  ASSIGN_OR_RETURN(info.version, ReadInt64Attribute(file, root, "/", "format_version"));
  if (info.version < 1 || info.version > kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(file.path, " has checkpoint format version ",
                                                   info.version, "; this build reads 1 to ",
                                                   kFormatVersion));
  }
  ASSIGN_OR_RETURN(info.world_size, ReadInt64Attribute(file, root, "/", "world_size"));
  return info;
}

absl::StatusOr<StoredTensor> OpenStoredTensor(const H5File& file, absl::string_view name) {
  StoredTensor out;
  out.name = std::string(name);
  out.path = absl::StrCat(kTensorsGroup, "/", name);
  absl::StatusOr<CheckedDataset> dataset = OpenCheckedDataset(file, out.path);
  if (absl::IsNotFound(dataset.status())) {
    return absl::NotFoundError(
        absl::StrCat(file.path, " has no tensor '", name, "' (dataset ", out.path, ")"));
  }
  if (!dataset.ok()) return dataset.status();
  out.dataset = std::move(*dataset);
  absl::StatusOr<DType> dtype = DTypeOfFileType(out.dataset.type.id());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path, ": dataset ", out.path, " has ", dtype.status().message()));
  }
  out.dtype = *dtype;
  // The bytes that the dataspace needs must be what the file stores, and within the file.
  const hsize_t want = static_cast<hsize_t>(out.dataset.shape.numel()) * DTypeSize(out.dtype);
  const hsize_t stored = H5Dget_storage_size(out.dataset.dataset.id());
  hsize_t file_size = 0;
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Fget_filesize(file.file.id(), &file_size)));
  if (stored != want || want > file_size) {
    H5Eclear2(H5E_DEFAULT);
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": dataset ", out.path, " stores ", stored, " bytes for ", DTypeName(out.dtype),
        out.dataset.shape.ToString(), " (", want, " bytes) in a file of ", file_size));
  }
  ASSIGN_OR_RETURN(out.crc32c,
                   ReadUint32Attribute(file, out.dataset.dataset.id(), out.path, "crc32c"));
  return out;
}

absl::Status ReadBox(const H5File& file, const StoredTensor& tensor,
                     absl::Span<const int64_t> offset, const Shape& extent, void* out) {
  if (extent.numel() == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(H5Handle type, FileTypeOf(tensor.dtype));
  ASSIGN_OR_RETURN(
      H5Handle file_space,
      H5Handle::Own(USINE_HDF5_ID(H5Dget_space(tensor.dataset.dataset.id())), H5Sclose));
  RETURN_IF_ERROR(SelectBox(file_space.id(), offset, extent));
  H5Handle mem_space;
  if (extent.rank() == 0) {
    ASSIGN_OR_RETURN(mem_space, H5Handle::Own(USINE_HDF5_ID(H5Screate(H5S_SCALAR)), H5Sclose));
  } else {
    std::vector<hsize_t> dims(extent.dims().begin(), extent.dims().end());
    ASSIGN_OR_RETURN(mem_space,
                     H5Handle::Own(USINE_HDF5_ID(H5Screate_simple(static_cast<int>(dims.size()),
                                                                  dims.data(), nullptr)),
                                   H5Sclose));
  }
  return WithContext(USINE_HDF5_STATUS(H5Dread(tensor.dataset.dataset.id(), type.id(),
                                               mem_space.id(), file_space.id(), H5P_DEFAULT, out)),
                     absl::StrCat("reading ", tensor.path, " from ", file.path));
}

absl::StatusOr<std::optional<uint64_t>> RawDataAddress(const H5File& file,
                                                       const StoredTensor& tensor) {
  ASSIGN_OR_RETURN(H5Handle create_list,
                   H5Handle::Own(USINE_HDF5_ID(H5Fget_create_plist(file.file.id())), H5Pclose));
  hsize_t user_block = 0;
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pget_userblock(create_list.id(), &user_block)));
  const haddr_t address = H5Dget_offset(tensor.dataset.dataset.id());
  if (address == HADDR_UNDEF || user_block != 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  hsize_t file_size = 0;
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Fget_filesize(file.file.id(), &file_size)));
  const uint64_t bytes =
      static_cast<uint64_t>(tensor.dataset.shape.numel()) * DTypeSize(tensor.dtype);
  if (address > file_size || bytes > file_size - address) {
    return absl::DataLossError(absl::StrCat(file.path, ": dataset ", tensor.path, " stores ", bytes,
                                            " bytes at ", address, ", past the end of ",
                                            file_size));
  }
  return static_cast<uint64_t>(address);
}

}  // namespace usine::checkpoint_internal
