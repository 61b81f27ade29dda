// A safetensors file, Hugging Face's format for model weights, read tensor by tensor: an 8-byte
// little-endian header length N, N bytes of JSON ({name: {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, ..., optionally "__metadata__": {string: string}}), then the
// tensors' bytes, row-major and little-endian, each at [begin, end) of what follows the header.
// For importing models trained elsewhere (runtime/train/hf_gpt2_import.h).
//
//   ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open("gpt2/model.safetensors"));
//   for (const auto& [name, entry] : file.entries()) ... entry.dtype, entry.shape ...
//   ASSIGN_OR_RETURN(Tensor wte, file.ReadF32("wte.weight"));   // f32, on the cpu
//
// Open checks the whole header (every entry's dtype, shape and offsets against the file's size);
// a malformed file is an error naming the file and the entry, never a crash. The bytes are read
// from disk when asked for. Thread-compatible: const methods may be called concurrently.
#ifndef USINE_CHECKPOINT_SAFETENSORS_FILE_H_
#define USINE_CHECKPOINT_SAFETENSORS_FILE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace usine {

class SafetensorsFile {
 public:
  struct Entry {
    std::string dtype;  // As the header names it: "F32", "F16", "BF16", "F64", "I64", ...
    Shape shape;
    int64_t offset = 0;  // Of its first byte in the file.
    int64_t bytes = 0;
  };

  // Reads and checks the header of `path`. Errors: NotFound for a missing file; DataLoss for a
  // header that is not such JSON (or longer than 100 MB, or than the file), an entry without a
  // string dtype, a shape of non-negative integers or two data_offsets in order within the
  // file, or whose byte count is not its shape's at its dtype's size (for the dtypes known
  // here: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL).
  [[nodiscard]] static absl::StatusOr<SafetensorsFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // By name; "__metadata__" is not an entry.
  const std::map<std::string, Entry>& entries() const { return entries_; }
  // The header's "__metadata__" (string values), empty without one.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Entry `name` as a new f32 tensor on the cpu: F32 as stored, F16 and BF16 widened (exact),
  // F64 rounded to nearest. NotFound for a name the file lacks, InvalidArgument for another
  // dtype, DataLoss when the file is shorter than its header said (it changed since Open).
  [[nodiscard]] absl::StatusOr<Tensor> ReadF32(absl::string_view name) const;

 private:
  SafetensorsFile() = default;

  std::string path_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace usine

#endif  // USINE_CHECKPOINT_SAFETENSORS_FILE_H_
