#include "checkpoint/internal/metadata_io.h"

#include <vector>

#include "absl/strings/str_cat.h"

#include "checkpoint/internal/h5_objects.h"
#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {
namespace {

constexpr size_t kMaxMetadataCount = 100'000;

// The dataspace, file type and bytes of one value.
struct Encoded {
  H5Handle space;
  H5Handle type;
  std::string bytes;
};

absl::StatusOr<Encoded> Encode(const MetadataValue& value) {
  Encoded out;
  const auto* blob = std::get_if<ByteBlob>(&value);
  if (blob != nullptr) {
    const hsize_t size = blob->bytes.size();
    ASSIGN_OR_RETURN(out.space,
                     H5Handle::Own(USINE_HDF5_ID(H5Screate_simple(1, &size, nullptr)), H5Sclose));
    ASSIGN_OR_RETURN(out.type, H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_U8LE)), H5Tclose));
    out.bytes = blob->bytes;
    return out;
  }
  ASSIGN_OR_RETURN(out.space, H5Handle::Own(USINE_HDF5_ID(H5Screate(H5S_SCALAR)), H5Sclose));
  if (const auto* i = std::get_if<int64_t>(&value)) {
    ASSIGN_OR_RETURN(out.type, H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_STD_I64LE)), H5Tclose));
    out.bytes.assign(reinterpret_cast<const char*>(i), sizeof(*i));
  } else if (const auto* d = std::get_if<double>(&value)) {
    ASSIGN_OR_RETURN(out.type, H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_IEEE_F64LE)), H5Tclose));
    out.bytes.assign(reinterpret_cast<const char*>(d), sizeof(*d));
  } else {
    const std::string& text = std::holds_alternative<JsonText>(value)
                                  ? std::get<JsonText>(value).text
                                  : std::get<std::string>(value);
    ASSIGN_OR_RETURN(out.type, StringType(text.size()));
    out.bytes = text.empty() ? std::string(1, '\0') : text;
  }
  return out;
}

absl::Status WriteValue(const H5File& file, hid_t lcpl, hid_t xfer, const std::string& name,
                        const MetadataValue& value, bool writes_data) {
  RETURN_IF_ERROR(ValidateEntryName(name));
  const size_t size = std::visit(
      [](const auto& v) -> size_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, JsonText>) return v.text.size();
        if constexpr (std::is_same_v<T, ByteBlob>) return v.bytes.size();
        if constexpr (std::is_same_v<T, std::string>) return v.size();
        return 8;
      },
      value);
  if (size > kMaxMetadataBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata '", name, "' has ", size, " bytes, over ", kMaxMetadataBytes));
  }
  ASSIGN_OR_RETURN(Encoded encoded, Encode(value));
  const std::string path = absl::StrCat(kMetadataGroup, "/", name);
  ASSIGN_OR_RETURN(
      H5Handle dataset,
      H5Handle::Own(USINE_HDF5_ID(H5Dcreate2(file.file.id(), path.c_str(), encoded.type.id(),
                                             encoded.space.id(), lcpl, H5P_DEFAULT, H5P_DEFAULT)),
                    H5Dclose));
  RETURN_IF_ERROR(WriteStringAttribute(dataset.id(), "kind", MetadataKindName(value)));
  if (!writes_data) RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Sselect_none(encoded.space.id())));
  if (!writes_data && !file.mpio) return absl::OkStatus();
  return WithContext(USINE_HDF5_STATUS(H5Dwrite(dataset.id(), encoded.type.id(), encoded.space.id(),
                                                encoded.space.id(), xfer, encoded.bytes.data())),
                     absl::StrCat("writing ", path, " to ", file.path));
}

absl::StatusOr<MetadataValue> ReadValue(const H5File& file, const std::string& path) {
  ASSIGN_OR_RETURN(CheckedDataset d, OpenCheckedDataset(file, path));
  ASSIGN_OR_RETURN(std::string kind, ReadStringAttribute(file, d.dataset.id(), path, "kind"));
  auto wrong = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": ", path, " (kind '", kind, "') has a ", d.shape.ToString(),
        " dataspace of type class ", static_cast<int>(d.type_class), " and size ", d.type_size));
  };
  const bool scalar = d.shape.rank() == 0;
  if (kind == "int64" || kind == "double") {
    const bool is_int = kind == "int64";
    if (!scalar || d.type_class != (is_int ? H5T_INTEGER : H5T_FLOAT) || d.type_size != 8) {
      return wrong();
    }
    if (is_int) {
      int64_t v = 0;
      RETURN_IF_ERROR(USINE_HDF5_STATUS(
          H5Dread(d.dataset.id(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v)));
      return MetadataValue(v);
    }
    double v = 0;
    RETURN_IF_ERROR(USINE_HDF5_STATUS(
        H5Dread(d.dataset.id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v)));
    return MetadataValue(v);
  }
  if (kind == "string" || kind == "json") {
    if (!scalar || d.type_class != H5T_STRING || H5Tis_variable_str(d.type.id()) != 0 ||
        d.type_size == 0 || d.type_size > kMaxMetadataBytes) {
      return wrong();
    }
    std::string text(d.type_size, '\0');
    RETURN_IF_ERROR(USINE_HDF5_STATUS(
        H5Dread(d.dataset.id(), d.type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data())));
    text.resize(std::min(text.size(), text.find('\0')));
    if (kind == "json") return MetadataValue(JsonText{std::move(text)});
    return MetadataValue(std::move(text));
  }
  if (kind == "bytes") {
    if (d.shape.rank() != 1 || d.type_class != H5T_INTEGER || d.type_size != 1 ||
        static_cast<size_t>(d.shape.dim(0)) > kMaxMetadataBytes) {
      return wrong();
    }
    std::string bytes(static_cast<size_t>(d.shape.dim(0)), '\0');
    if (!bytes.empty()) {
      RETURN_IF_ERROR(USINE_HDF5_STATUS(
          H5Dread(d.dataset.id(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data())));
    }
    return MetadataValue(ByteBlob{std::move(bytes)});
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file.path, ": ", path, " has an unknown metadata kind '", kind, "'"));
}

}  // namespace

absl::Status WriteMetadata(const H5File& file, const std::map<std::string, MetadataValue>& metadata,
                           bool writes_data) {
  ASSIGN_OR_RETURN(H5Handle lcpl, IntermediateGroupsList());
  ASSIGN_OR_RETURN(H5Handle xfer, TransferList(file));
  ASSIGN_OR_RETURN(H5Handle group,
                   H5Handle::Own(USINE_HDF5_ID(H5Gcreate2(file.file.id(), kMetadataGroup,
                                                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                                 H5Gclose));
  for (const auto& [name, value] : metadata) {
    RETURN_IF_ERROR(WriteValue(file, lcpl.id(), xfer.id(), name, value, writes_data));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, MetadataValue>> ReadMetadata(const H5File& file) {
  ASSIGN_OR_RETURN(std::vector<std::string> paths,
                   ListDatasets(file, kMetadataGroup, kMaxMetadataCount));
  std::map<std::string, MetadataValue> out;
  const size_t prefix = std::string(kMetadataGroup).size() + 1;
  for (const std::string& path : paths) {
    const std::string name = path.substr(prefix);
    RETURN_IF_ERROR(WithContext(ValidateEntryName(name), file.path));
    ASSIGN_OR_RETURN(MetadataValue value, ReadValue(file, path));
    out.emplace(name, std::move(value));
  }
  return out;
}

}  // namespace usine::checkpoint_internal
