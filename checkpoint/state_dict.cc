#include "checkpoint/state_dict.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "runtime/core/status_macros.h"

namespace usine {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

bool BoxesOverlap(absl::Span<const int64_t> a_offset, const Shape& a_extent,
                  absl::Span<const int64_t> b_offset, const Shape& b_extent) {
  if (a_extent.numel() == 0 || b_extent.numel() == 0) return false;
  for (size_t d = 0; d < a_offset.size(); ++d) {
    if (a_offset[d] + a_extent.dim(static_cast<int>(d)) <= b_offset[d] ||
        b_offset[d] + b_extent.dim(static_cast<int>(d)) <= a_offset[d]) {
      return false;
    }
  }
  return true;
}

int64_t TensorEntry::nbytes() const {
  int64_t total = 0;
  for (const TensorPiece& p : pieces) total += static_cast<int64_t>(p.tensor.nbytes());
  return total;
}

absl::string_view MetadataKindName(const MetadataValue& value) {
  constexpr absl::string_view kNames[] = {"int64", "double", "string", "json", "bytes"};
  return kNames[value.index()];
}

absl::Status ValidateEntryName(absl::string_view name) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("entry name '", name, "' ", why));
  };
  if (name.empty() || name.size() > 255) return bad("is not 1 to 255 characters long");
  size_t component = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '/') {
      const absl::string_view part = name.substr(component, i - component);
      if (part.empty()) return bad("has an empty component");
      if (part == "." || part == "..") return bad("has a '.' or '..' component");
      component = i + 1;
    } else if (!IsNameChar(name[i])) {
      return bad("has a character outside [A-Za-z0-9_.-/]");
    }
  }
  return absl::OkStatus();
}

absl::Status StateDict::AddTensor(std::string name, Tensor tensor) {
  RETURN_IF_ERROR(CheckDefined(tensor, name));
  Shape global = tensor.shape();
  std::vector<int64_t> offset(static_cast<size_t>(global.rank()), 0);
  return AddShard(std::move(name), std::move(tensor), std::move(global), std::move(offset));
}

absl::Status StateDict::AddShard(std::string name, Tensor piece, Shape global_shape,
                                 std::vector<int64_t> offset) {
  RETURN_IF_ERROR(ValidateEntryName(name));
  RETURN_IF_ERROR(CheckDefined(piece, name));
  RETURN_IF_ERROR(global_shape.Validate());
  auto box = [&] {
    return absl::StrCat("tensor '", name, "': piece ", DTypeName(piece.dtype()),
                        piece.shape().ToString(), " at offset [", absl::StrJoin(offset, ", "), "]");
  };
  if (piece.rank() != global_shape.rank() ||
      offset.size() != static_cast<size_t>(global_shape.rank())) {
    return absl::InvalidArgumentError(
        absl::StrCat(box(), " does not have the rank of ", global_shape.ToString()));
  }
  for (int d = 0; d < global_shape.rank(); ++d) {
    if (offset[d] < 0 || offset[d] + piece.dim(d) > global_shape.dim(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat(box(), " is not inside ", global_shape.ToString()));
    }
  }
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    const DType dtype = piece.dtype();
    std::vector<TensorPiece> pieces;
    pieces.push_back(TensorPiece{std::move(piece), std::move(offset)});
    tensors_.emplace(std::move(name),
                     TensorEntry{std::move(global_shape), dtype, std::move(pieces)});
    return absl::OkStatus();
  }
  TensorEntry& entry = it->second;
  if (entry.global_shape != global_shape || entry.dtype != piece.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat(
        box(), " of ", global_shape.ToString(), " is not a piece of the ", DTypeName(entry.dtype),
        entry.global_shape.ToString(), " tensor added before under that name"));
  }
  for (const TensorPiece& other : entry.pieces) {
    if (BoxesOverlap(offset, piece.shape(), other.offset, other.tensor.shape())) {
      return absl::InvalidArgumentError(absl::StrCat(
          box(), " overlaps the piece ", other.tensor.shape().ToString(), " at offset [",
          absl::StrJoin(other.offset, ", "), "] added before (a tensor added twice?)"));
    }
  }
  entry.pieces.push_back(TensorPiece{std::move(piece), std::move(offset)});
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<const T*> StateDict::Get(absl::string_view name, absl::string_view kind) const {
  auto it = metadata_.find(std::string(name));
  if (it == metadata_.end()) {
    return absl::NotFoundError(absl::StrCat("no metadata '", name, "'"));
  }
  const T* value = std::get_if<T>(&it->second);
  if (value == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata '", name, "' is ", MetadataKindName(it->second), ", not ", kind));
  }
  return value;
}

absl::StatusOr<int64_t> StateDict::GetInt(absl::string_view name) const {
  ASSIGN_OR_RETURN(const int64_t* v, Get<int64_t>(name, "int64"));
  return *v;
}

absl::StatusOr<double> StateDict::GetDouble(absl::string_view name) const {
  ASSIGN_OR_RETURN(const double* v, Get<double>(name, "double"));
  return *v;
}

absl::StatusOr<std::string> StateDict::GetString(absl::string_view name) const {
  ASSIGN_OR_RETURN(const std::string* v, Get<std::string>(name, "string"));
  return *v;
}

absl::StatusOr<std::string> StateDict::GetJson(absl::string_view name) const {
  ASSIGN_OR_RETURN(const JsonText* v, Get<JsonText>(name, "json"));
  return v->text;
}

absl::StatusOr<std::string> StateDict::GetBytes(absl::string_view name) const {
  ASSIGN_OR_RETURN(const ByteBlob* v, Get<ByteBlob>(name, "bytes"));
  return v->bytes;
}

int64_t StateDict::piece_bytes() const {
  int64_t total = 0;
  for (const auto& [name, entry] : tensors_) total += entry.nbytes();
  return total;
}

}  // namespace usine
