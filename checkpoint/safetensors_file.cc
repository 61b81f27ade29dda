#include "checkpoint/safetensors_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "nlohmann/json.hpp"
#include "runtime/core/float16.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using Json = nlohmann::json;

// Longer headers are refused: real ones are a few hundred bytes per tensor.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The element size of a safetensors dtype, 0 for one not known here.
int64_t ElementBytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

absl::Status Malformed(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": not a safetensors file: ", what));
}

// `count` bytes at `offset` of `file` into `to`; false when the file ends first.
bool ReadAt(std::ifstream& file, int64_t offset, int64_t count, char* to) {
  file.seekg(offset);
  file.read(to, count);
  return file.good() || (file.eof() && file.gcount() == count);
}

// An entry of the header, checked against the `data_bytes` that follow the header.
absl::StatusOr<SafetensorsFile::Entry> ParseEntry(const std::string& path, const std::string& name,
                                                  const Json& json, int64_t data_start,
                                                  int64_t data_bytes) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!json.is_object()) return Malformed(path, absl::StrCat(where, " is not an object"));
  const auto dtype = json.find("dtype");
  const auto shape = json.find("shape");
  const auto offsets = json.find("data_offsets");
  if (dtype == json.end() || !dtype->is_string()) {
    return Malformed(path, absl::StrCat(where, " has no dtype string"));
  }
  SafetensorsFile::Entry entry;
  entry.dtype = dtype->get<std::string>();
  const int64_t element_bytes = ElementBytes(entry.dtype);
  if (element_bytes == 0) {
    return Malformed(path, absl::StrCat(where, " has the unknown dtype '", entry.dtype, "'"));
  }
  if (shape == json.end() || !shape->is_array()) {
    return Malformed(path, absl::StrCat(where, " has no shape array"));
  }
  std::vector<int64_t> dims;
  // The byte count, kept below 2^62 so that no product overflows.
  int64_t bytes = element_bytes;
  for (const Json& dim : *shape) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > (uint64_t{1} << 62)) {
      return Malformed(path,
                       absl::StrCat(where, "'s shape holds ", dim.dump(), ", not a dimension"));
    }
    dims.push_back(dim.get<int64_t>());
    if (dims.back() != 0 && bytes > (int64_t{1} << 62) / dims.back()) {
      return Malformed(path, absl::StrCat(where, "'s shape ", shape->dump(), " is too large"));
    }
    bytes *= dims.back();
  }
  if (offsets == json.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return Malformed(path, absl::StrCat(where, " has no data_offsets [begin, end]"));
  }
  const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
  if (begin > end || end > static_cast<uint64_t>(data_bytes)) {
    return Malformed(path,
                     absl::StrCat(where, "'s data_offsets ", offsets->dump(),
                                  " are not within the file's ", data_bytes, " bytes of data"));
  }
  if (static_cast<int64_t>(end - begin) != bytes) {
    return Malformed(path, absl::StrCat(where, " holds ", end - begin, " bytes; its shape ",
                                        shape->dump(), " of ", entry.dtype, " takes ", bytes));
  }
  entry.shape = Shape(absl::MakeConstSpan(dims));
  entry.offset = data_start + static_cast<int64_t>(begin);
  entry.bytes = bytes;
  return entry;
}

}  // namespace

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return absl::NotFoundError(absl::StrCat(path, ": ", error.message()));
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot be opened"));
  unsigned char length_bytes[8];
  if (size < 8 || !ReadAt(file, 0, 8, reinterpret_cast<char*>(length_bytes))) {
    return Malformed(path, absl::StrCat("it has ", size, " bytes, fewer than a header's 8"));
  }
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
  if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8) {
    return Malformed(path, absl::StrCat("its header length, ", header_bytes,
                                        ", exceeds the file's ", size - 8, " bytes or 100 MB"));
  }
  std::string header(header_bytes, '\0');
  if (!ReadAt(file, 8, static_cast<int64_t>(header_bytes), header.data())) {
    return Malformed(path, "its header cannot be read");
  }
  Json json;
  try {
    json = Json::parse(header);
  } catch (const Json::exception& e) {
    return Malformed(path, absl::StrCat("its header is not JSON: ", e.what()));
  }
  if (!json.is_object()) return Malformed(path, "its header is not a JSON object");
  SafetensorsFile result;
  result.path_ = path;
  const int64_t data_start = static_cast<int64_t>(8 + header_bytes);
  const int64_t data_bytes = static_cast<int64_t>(size) - data_start;
  for (const auto& [name, value] : json.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return Malformed(path, "its __metadata__ is not an object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          return Malformed(path, absl::StrCat("its __metadata__ '", key, "' is not a string"));
        }
        result.metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(Entry entry, ParseEntry(path, name, value, data_start, data_bytes));
    result.entries_.emplace(name, std::move(entry));
  }
  return result;
}

absl::StatusOr<Tensor> SafetensorsFile::ReadF32(absl::string_view name) const {
  const auto it = entries_.find(std::string(name));
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", name, "'"));
  }
  const Entry& entry = it->second;
  const std::string& dtype = entry.dtype;
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16" && dtype != "F64") {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", name, "' is ", dtype,
                                                   ", not a float tensor (F32, F16, BF16, F64)"));
  }
  std::vector<char> bytes(static_cast<size_t>(entry.bytes));
  std::ifstream file(path_, std::ios::binary);
  if (!file || !ReadAt(file, entry.offset, entry.bytes, bytes.data())) {
    return absl::DataLossError(absl::StrCat(path_, ": tensor '", name,
                                            "' cannot be read (the file is shorter than ",
                                            entry.offset + entry.bytes, " bytes, or unreadable)"));
  }
  ASSIGN_OR_RETURN(Tensor tensor, Tensor::Empty(entry.shape, DType::kF32));
  ASSIGN_OR_RETURN(absl::Span<float> out, tensor.host_span<float>());
  // The file's bytes are little-endian, as the host's (x86-64, arm64).
  const char* in = bytes.data();
  if (dtype == "F32") {
    std::memcpy(out.data(), in, bytes.size());
  } else if (dtype == "F64") {
    for (size_t i = 0; i < out.size(); ++i) {
      double x;
      std::memcpy(&x, in + 8 * i, 8);
      out[i] = static_cast<float>(x);
    }
  } else {
    const bool bf16 = dtype == "BF16";
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, in + 2 * i, 2);
      out[i] = bf16 ? BFloat16BitsToFloat(h) : Float16BitsToFloat(h);
    }
  }
  return tensor;
}

}  // namespace usine
