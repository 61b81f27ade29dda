// safetensors files for tests (checkpoint/safetensors_file.h's format), built from raw entries,
// so that tests can also build malformed ones.
//
//   const std::string image = SafetensorsImage({{"w", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})}});
//   WriteBytes(dir + "/model.safetensors", image);
#ifndef USINE_TESTS_TESTING_SAFETENSORS_IMAGE_H_
#define USINE_TESTS_TESTING_SAFETENSORS_IMAGE_H_

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace usine::testing {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;  // Little-endian elements, row-major.
};

// The header's JSON as the format writes it: entries in order, their data back to back.
inline std::string SafetensorsHeader(const std::vector<SafetensorsEntry>& entries,
                                     const std::string& metadata_json = "") {
  std::vector<std::string> items;
  if (!metadata_json.empty()) items.push_back(absl::StrCat("\"__metadata__\":", metadata_json));
  size_t offset = 0;
  for (const SafetensorsEntry& e : entries) {
    items.push_back(absl::StrCat("\"", e.name, "\":{\"dtype\":\"", e.dtype, "\",\"shape\":[",
                                 absl::StrJoin(e.shape, ","), "],\"data_offsets\":[", offset, ",",
                                 offset + e.bytes.size(), "]}"));
    offset += e.bytes.size();
  }
  return absl::StrCat("{", absl::StrJoin(items, ","), "}");
}

// A whole file: the header's length (8 bytes, little-endian), `header`, then the entries' data.
inline std::string SafetensorsImageWithHeader(const std::string& header,
                                              const std::vector<SafetensorsEntry>& entries) {
  std::string image(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) image[i] = static_cast<char>(length >> (8 * i) & 0xff);
  image += header;
  for (const SafetensorsEntry& e : entries) image += e.bytes;
  return image;
}

inline std::string SafetensorsImage(const std::vector<SafetensorsEntry>& entries,
                                    const std::string& metadata_json = "") {
  return SafetensorsImageWithHeader(SafetensorsHeader(entries, metadata_json), entries);
}

template <typename T>
std::string ElementBytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}
inline std::string F32Bytes(const std::vector<float>& values) { return ElementBytes(values); }

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace usine::testing

#endif  // USINE_TESTS_TESTING_SAFETENSORS_IMAGE_H_
