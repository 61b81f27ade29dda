// libFuzzer target: SafetensorsFile::Open on arbitrary file contents must return a Status (never
// crash, never read out of bounds), and every float tensor of a file it accepts must be readable
// (Open checked each one's bytes against the file's size).
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "checkpoint/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/usine_safetensors_fuzz." + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  absl::StatusOr<usine::SafetensorsFile> file = usine::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  for (const auto& [name, entry] : file->entries()) {
    const absl::StatusOr<usine::Tensor> tensor = file->ReadF32(name);
    const bool is_float = entry.dtype == "F32" || entry.dtype == "F16" || entry.dtype == "BF16" ||
                          entry.dtype == "F64";
    if (tensor.ok() != is_float) __builtin_trap();
    if (tensor.ok() && tensor->shape() != entry.shape) __builtin_trap();
  }
  return 0;
}
