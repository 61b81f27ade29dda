// libFuzzer target: the GPT-2 tokenizer accepts any bytes, and Decode(Encode(bytes)) gives
// the same bytes back.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "runtime/data/gpt2_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const usine::Gpt2Tokenizer* const tokenizer = [] {
    auto loaded = usine::Gpt2Tokenizer::Load(USINE_TEST_DATA_DIR "/gpt2/vocab.bpe",
                                             USINE_TEST_DATA_DIR "/gpt2/encoder.json");
    if (!loaded.ok()) std::abort();
    return loaded->release();
  }();
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<std::string> back = tokenizer->Decode(tokenizer->Encode(text));
  if (!back.ok() || *back != text) __builtin_trap();
  return 0;
}
