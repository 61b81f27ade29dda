// libFuzzer target: TokenShard::Open on arbitrary file contents must return a Status (never
// crash, never read out of bounds), and a shard it accepts must be readable end to end.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime/data/token_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/usine_token_shard_fuzz." + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  absl::StatusOr<usine::TokenShard> shard = usine::TokenShard::Open(path, /*vocab_size=*/50257);
  if (shard.ok()) {
    std::vector<int32_t> tokens(shard->size());
    shard->CopyTokens(0, shard->size(), tokens.data());
    for (int32_t t : tokens) {
      if (t < 0 || t >= 50257) __builtin_trap();  // Open promised every id is in range.
    }
  }
  return 0;
}
