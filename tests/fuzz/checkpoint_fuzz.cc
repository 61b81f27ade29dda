// libFuzzer target: any bytes as a checkpoint file, opened from memory and inspected with
// every checksum recomputed (the loader's checks, metadata and tensor reads). It must return
// a status, never crash, hang or read out of bounds. Seeds: a small valid checkpoint.
#include <cstddef>
#include <cstdint>

#include "checkpoint/inspect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  usine::InspectCheckpointImage(bytes, "fuzz.h5", /*verify=*/true).IgnoreError();
  return 0;
}
