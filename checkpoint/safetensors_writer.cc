#include "checkpoint/safetensors_writer.h"

#include <bit>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

#include "nlohmann/json.hpp"
#include "runtime/core/atomic_file.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using Json = nlohmann::ordered_json;

// The format stores little-endian elements, which the host's are.
static_assert(std::endian::native == std::endian::little);

// Safetensors names usine's dtypes in capitals: "F32", "BF16", "I64", ...
std::string SafetensorsDType(DType dtype) { return absl::AsciiStrToUpper(DTypeName(dtype)); }

// The header: the length's 8 bytes, then the JSON padded with spaces to a multiple of 8.
std::string Header(absl::Span<const SafetensorsSpec> specs,
                   const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsSpec& spec : specs) {
    const uint64_t bytes = static_cast<uint64_t>(spec.shape.numel()) * DTypeSize(spec.dtype);
    header[spec.name] = {
        {"dtype", SafetensorsDType(spec.dtype)},
        {"shape", std::vector<int64_t>(spec.shape.dims().begin(), spec.shape.dims().end())},
        {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t length = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + json;
}

absl::Status CheckNames(const std::string& path, absl::Span<const SafetensorsSpec> specs) {
  std::set<std::string> seen;
  for (const SafetensorsSpec& spec : specs) {
    if (spec.name.empty() || spec.name == "__metadata__" || !seen.insert(spec.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot name a tensor '", spec.name,
                                                     "' (empty, repeated or \"__metadata__\")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSafetensorsFile(const std::string& path, absl::Span<const SafetensorsSpec> specs,
                                  absl::FunctionRef<absl::StatusOr<Tensor>(size_t)> tensor_of,
                                  const std::map<std::string, std::string>& metadata) {
  RETURN_IF_ERROR(CheckNames(path, specs));
  const std::string header = Header(specs, metadata);
  return WriteFileAtomically(path, [&](const PieceWriter& write) -> absl::Status {
    RETURN_IF_ERROR(write(header));
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSIGN_OR_RETURN(const Tensor tensor, tensor_of(i));
      const SafetensorsSpec& spec = specs[i];
      if (!tensor.device().is_cpu() || tensor.dtype() != spec.dtype ||
          tensor.shape() != spec.shape) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor '", spec.name, "' was given as ", tensor.DebugString(),
                         "; its header says ", SafetensorsDType(spec.dtype), " ",
                         spec.shape.ToString(), " on the cpu"));
      }
      RETURN_IF_ERROR(write({static_cast<const char*>(tensor.raw_data()), tensor.nbytes()}));
    }
    return absl::OkStatus();
  });
}

}  // namespace usine
