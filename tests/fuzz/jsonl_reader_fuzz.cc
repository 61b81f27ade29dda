// libFuzzer target: the JSONL reader on arbitrary file contents. Every line must yield a
// string or a Status (never crash or read out of bounds), line numbers must rise, no line
// may hold a line ending, and the reader must consume exactly the file's bytes.
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "runtime/data/jsonl_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/usine_jsonl_reader_fuzz." + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  absl::StatusOr<std::unique_ptr<usine::JsonlReader>> reader = usine::JsonlReader::Open(path);
  if (!reader.ok()) return 0;
  std::string line;
  int64_t number = 0, previous = 0;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->NextLine(&line, &number);
    if (!more.ok()) __builtin_trap();  // A regular file reads without error.
    if (!*more) break;
    if (number <= previous || line.find('\n') != std::string::npos) __builtin_trap();
    if (usine::IsBlankJsonlLine(line)) __builtin_trap();
    previous = number;
    absl::StatusOr<std::string> text = usine::ParseJsonlLine(line, "text");
    if (!text.ok() && text.status().message().empty()) __builtin_trap();
  }
  if ((*reader)->bytes_read() != static_cast<int64_t>(size)) __builtin_trap();
  return 0;
}
