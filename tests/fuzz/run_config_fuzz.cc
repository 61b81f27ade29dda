// libFuzzer target: the run configuration (runtime/train/run_config.h) from arbitrary bytes:
// the text up to the first NUL is the TOML file, each NUL-separated piece after it one
// `--set` override. A parse must give a config or an error with a message (never crash);
// an accepted config must be valid, and its ToToml must parse back to the same config and
// the same text.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

#include "runtime/train/run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> pieces = absl::StrSplit(input, '\0');
  const std::string text = pieces.front();
  const std::vector<std::string> overrides(pieces.begin() + 1, pieces.end());

  absl::StatusOr<usine::RunConfig> config = usine::ParseRunConfig(text, "fuzz.toml", overrides);
  if (!config.ok()) {
    if (config.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (!config->Validate().ok()) __builtin_trap();
  const std::string effective = usine::ToToml(*config);
  absl::StatusOr<usine::RunConfig> back = usine::ParseRunConfig(effective, "effective.toml");
  if (!back.ok() || !(*back == *config)) __builtin_trap();
  if (usine::ToToml(*back) != effective) __builtin_trap();
  return 0;
}
