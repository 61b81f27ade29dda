#include "checkpoint/internal/h5_objects.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {
namespace {

constexpr size_t kMaxStringAttribute = 64 << 10;

absl::Status Foreign(const H5File& file, absl::string_view object, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(file.path, ": ", object, " ", why));
}

struct VisitState {
  const H5File* file;
  std::string group;
  size_t max_count;
  std::vector<std::string> datasets;
  absl::Status status;
};

herr_t VisitLink(hid_t group, const char* name, const H5L_info_t* info, void* data) {
  auto* state = static_cast<VisitState*>(data);
  const std::string path = absl::StrCat(state->group, "/", name);
  if (info->type != H5L_TYPE_HARD) {
    state->status = Foreign(*state->file, path, "is a soft or external link (refused)");
    return -1;
  }
  H5O_info_t object;
  if (H5Oget_info_by_name2(group, name, &object, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    state->status =
        WithContext(USINE_HDF5_STATUS(-1), absl::StrCat(state->file->path, ": reading ", path));
    return -1;
  }
  if (object.type == H5O_TYPE_DATASET) {
    if (state->datasets.size() >= state->max_count) {
      state->status = Foreign(*state->file, state->group,
                              absl::StrCat("holds more than ", state->max_count, " datasets"));
      return -1;
    }
    state->datasets.push_back(path);
  } else if (object.type != H5O_TYPE_GROUP) {
    state->status = Foreign(*state->file, path, "is neither a group nor a dataset");
    return -1;
  }
  return 0;
}

// An attribute of `object` with its type and dataspace; a missing one is a foreign file.
struct OpenedAttribute {
  H5Handle attr;
  H5Handle type;
  H5Handle space;
};

absl::StatusOr<OpenedAttribute> OpenAttribute(const H5File& file, hid_t object,
                                              absl::string_view where, const char* name) {
  const htri_t exists = H5Aexists(object, name);
  RETURN_IF_ERROR(USINE_HDF5_STATUS(exists));
  if (exists == 0) return Foreign(file, where, absl::StrCat("has no attribute '", name, "'"));
  OpenedAttribute a;
  ASSIGN_OR_RETURN(a.attr,
                   H5Handle::Own(USINE_HDF5_ID(H5Aopen(object, name, H5P_DEFAULT)), H5Aclose));
  ASSIGN_OR_RETURN(a.type, H5Handle::Own(USINE_HDF5_ID(H5Aget_type(a.attr.id())), H5Tclose));
  ASSIGN_OR_RETURN(a.space, H5Handle::Own(USINE_HDF5_ID(H5Aget_space(a.attr.id())), H5Sclose));
  return a;
}

template <typename T>
absl::StatusOr<T> ReadNumericAttribute(const H5File& file, hid_t object, absl::string_view where,
                                       const char* name, H5T_class_t want_class, hid_t mem_type) {
  ASSIGN_OR_RETURN(OpenedAttribute opened, OpenAttribute(file, object, where, name));
  const H5Handle& attr = opened.attr;
  const H5Handle& type = opened.type;
  const H5Handle& space = opened.space;
  if (H5Tget_class(type.id()) != want_class || H5Tget_size(type.id()) > 8 ||
      H5Sget_simple_extent_type(space.id()) != H5S_SCALAR) {
    return Foreign(file, where, absl::StrCat("has an attribute '", name, "' of the wrong type"));
  }
  T value{};
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Aread(attr.id(), mem_type, &value)));
  return value;
}

}  // namespace

absl::Status CheckHardLinks(const H5File& file, const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    const htri_t exists = H5Lexists(file.file.id(), prefix.c_str(), H5P_DEFAULT);
    RETURN_IF_ERROR(USINE_HDF5_STATUS(exists));
    if (exists == 0) {
      return absl::NotFoundError(absl::StrCat(file.path, ": no ", prefix));
    }
    H5L_info_t info;
    RETURN_IF_ERROR(
        USINE_HDF5_STATUS(H5Lget_info(file.file.id(), prefix.c_str(), &info, H5P_DEFAULT)));
    if (info.type != H5L_TYPE_HARD) {
      return Foreign(file, prefix, "is a soft or external link (refused)");
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

absl::StatusOr<CheckedDataset> OpenCheckedDataset(const H5File& file, const std::string& path) {
  RETURN_IF_ERROR(CheckHardLinks(file, path));
  H5O_info_t object;
  RETURN_IF_ERROR(USINE_HDF5_STATUS(
      H5Oget_info_by_name2(file.file.id(), path.c_str(), &object, H5O_INFO_BASIC, H5P_DEFAULT)));
  if (object.type != H5O_TYPE_DATASET) return Foreign(file, path, "is not a dataset");
  CheckedDataset out;
  ASSIGN_OR_RETURN(
      out.dataset,
      H5Handle::Own(USINE_HDF5_ID(H5Dopen2(file.file.id(), path.c_str(), H5P_DEFAULT)), H5Dclose));
  {
    ASSIGN_OR_RETURN(H5Handle dcpl,
                     H5Handle::Own(USINE_HDF5_ID(H5Dget_create_plist(out.dataset.id())), H5Pclose));
    const int filters = H5Pget_nfilters(dcpl.id());
    RETURN_IF_ERROR(USINE_HDF5_STATUS(filters));
    if (filters != 0) return Foreign(file, path, "has filters (compression or plugins; refused)");
    const int external = H5Pget_external_count(dcpl.id());
    RETURN_IF_ERROR(USINE_HDF5_STATUS(external));
    if (external != 0) return Foreign(file, path, "keeps its data in external files (refused)");
    const H5D_layout_t layout = H5Pget_layout(dcpl.id());
    if (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT) {
      return Foreign(file, path, "is not contiguous or compact (chunked or virtual; refused)");
    }
  }
  ASSIGN_OR_RETURN(H5Handle space,
                   H5Handle::Own(USINE_HDF5_ID(H5Dget_space(out.dataset.id())), H5Sclose));
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.id());
  if (space_class != H5S_SIMPLE && space_class != H5S_SCALAR) {
    return Foreign(file, path, "has a null dataspace");
  }
  const int rank = H5Sget_simple_extent_ndims(space.id());
  RETURN_IF_ERROR(USINE_HDF5_STATUS(rank));
  if (rank > kMaxRank) return Foreign(file, path, absl::StrCat("has ", rank, " dimensions"));
  hsize_t dims[kMaxRank] = {};
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Sget_simple_extent_dims(space.id(), dims, nullptr)));
  std::vector<int64_t> shape;
  for (int d = 0; d < rank; ++d) {
    if (dims[d] > (hsize_t{1} << 62)) return Foreign(file, path, "has a dimension over 2^62");
    shape.push_back(static_cast<int64_t>(dims[d]));
  }
  out.shape = Shape(shape);
  if (!out.shape.Validate().ok()) {
    return Foreign(file, path, absl::StrCat("has more than 2^62 elements"));
  }
  ASSIGN_OR_RETURN(out.type, H5Handle::Own(USINE_HDF5_ID(H5Dget_type(out.dataset.id())), H5Tclose));
  out.type_class = H5Tget_class(out.type.id());
  out.type_size = H5Tget_size(out.type.id());
  return out;
}

absl::StatusOr<std::vector<std::string>> ListDatasets(const H5File& file, const std::string& group,
                                                      size_t max_count) {
  RETURN_IF_ERROR(CheckHardLinks(file, group));
  ASSIGN_OR_RETURN(
      H5Handle g,
      H5Handle::Own(USINE_HDF5_ID(H5Gopen2(file.file.id(), group.c_str(), H5P_DEFAULT)), H5Gclose));
  VisitState state{&file, group, max_count, {}, absl::OkStatus()};
  const herr_t rc = H5Lvisit(g.id(), H5_INDEX_NAME, H5_ITER_INC, &VisitLink, &state);
  if (!state.status.ok()) {
    H5Eclear2(H5E_DEFAULT);
    return state.status;
  }
  RETURN_IF_ERROR(USINE_HDF5_STATUS(rc));
  std::sort(state.datasets.begin(), state.datasets.end());
  return state.datasets;
}

absl::StatusOr<int64_t> ReadInt64Attribute(const H5File& file, hid_t object,
                                           absl::string_view where, const char* name) {
  return ReadNumericAttribute<int64_t>(file, object, where, name, H5T_INTEGER, H5T_NATIVE_INT64);
}

absl::StatusOr<uint32_t> ReadUint32Attribute(const H5File& file, hid_t object,
                                             absl::string_view where, const char* name) {
  return ReadNumericAttribute<uint32_t>(file, object, where, name, H5T_INTEGER, H5T_NATIVE_UINT32);
}

absl::StatusOr<std::string> ReadStringAttribute(const H5File& file, hid_t object,
                                                absl::string_view where, const char* name) {
  ASSIGN_OR_RETURN(OpenedAttribute opened, OpenAttribute(file, object, where, name));
  const H5Handle& attr = opened.attr;
  const H5Handle& type = opened.type;
  const H5Handle& space = opened.space;
  const size_t size = H5Tget_size(type.id());
  if (H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) != 0 || size == 0 ||
      size > kMaxStringAttribute || H5Sget_simple_extent_type(space.id()) != H5S_SCALAR) {
    return Foreign(file, where,
                   absl::StrCat("has an attribute '", name, "' that is not a fixed-length string"));
  }
  std::string value(size, '\0');
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Aread(attr.id(), type.id(), value.data())));
  value.resize(std::min(value.size(), value.find('\0')));
  return value;
}

absl::StatusOr<H5Handle> StringType(size_t size) {
  ASSIGN_OR_RETURN(H5Handle type, H5Handle::Own(USINE_HDF5_ID(H5Tcopy(H5T_C_S1)), H5Tclose));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_size(type.id(), std::max<size_t>(1, size))));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_strpad(type.id(), H5T_STR_NULLPAD)));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Tset_cset(type.id(), H5T_CSET_UTF8)));
  return type;
}

namespace {

absl::Status WriteScalarAttribute(hid_t object, const char* name, hid_t type, const void* value) {
  ASSIGN_OR_RETURN(H5Handle space, H5Handle::Own(USINE_HDF5_ID(H5Screate(H5S_SCALAR)), H5Sclose));
  ASSIGN_OR_RETURN(H5Handle attr,
                   H5Handle::Own(USINE_HDF5_ID(H5Acreate2(object, name, type, space.id(),
                                                          H5P_DEFAULT, H5P_DEFAULT)),
                                 H5Aclose));
  return USINE_HDF5_STATUS(H5Awrite(attr.id(), type, value));
}

}  // namespace

absl::Status WriteInt64Attribute(hid_t object, const char* name, int64_t value) {
  return WriteScalarAttribute(object, name, H5T_STD_I64LE, &value);
}

absl::Status WriteUint32Attribute(hid_t object, const char* name, uint32_t value) {
  return WriteScalarAttribute(object, name, H5T_STD_U32LE, &value);
}

absl::Status WriteStringAttribute(hid_t object, const char* name, absl::string_view value) {
  ASSIGN_OR_RETURN(H5Handle type, StringType(value.size()));
  std::string padded(std::max<size_t>(1, value.size()), '\0');
  std::copy(value.begin(), value.end(), padded.begin());
  return WriteScalarAttribute(object, name, type.id(), padded.data());
}

absl::Status SelectBox(hid_t space, absl::Span<const int64_t> offset, const Shape& extent) {
  if (extent.rank() == 0) return USINE_HDF5_STATUS(H5Sselect_all(space));
  std::vector<hsize_t> start(offset.begin(), offset.end());
  std::vector<hsize_t> count(extent.dims().begin(), extent.dims().end());
  return USINE_HDF5_STATUS(
      H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
}

absl::StatusOr<H5Handle> IntermediateGroupsList() {
  ASSIGN_OR_RETURN(H5Handle lcpl,
                   H5Handle::Own(USINE_HDF5_ID(H5Pcreate(H5P_LINK_CREATE)), H5Pclose));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_create_intermediate_group(lcpl.id(), 1)));
  return lcpl;
}

}  // namespace usine::checkpoint_internal
