#include "runtime/nn/tokens.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {
namespace {

template <typename Id>
absl::StatusOr<std::vector<int32_t>> Gather(const TokenWindow& w, int64_t vocab_size,
                                            absl::string_view what) {
  const Id* data = static_cast<const Id*>(w.tokens.raw_data());
  const int64_t stride = w.tokens.dim(1);
  std::vector<int32_t> ids(static_cast<size_t>(w.batch() * w.length));
  for (int64_t b = 0; b < w.batch(); ++b) {
    for (int64_t t = 0; t < w.length; ++t) {
      const int64_t id = data[b * stride + w.begin + t];
      if (id < 0 || id >= vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": token ", id, " at [", b, ", ", w.begin + t,
                         "] is outside the vocabulary [0, ", vocab_size, ")"));
      }
      ids[b * w.length + t] = static_cast<int32_t>(id);
    }
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ReadTokenIds(const TokenWindow& window, int64_t vocab_size,
                                                  absl::string_view what) {
  const Tensor& t = window.tokens;
  RETURN_IF_ERROR(CheckDefined(t, what));
  RETURN_IF_ERROR(CheckDevice(t, Device::Cpu(), what));
  if (t.rank() != 2 || (t.dtype() != DType::kU16 && t.dtype() != DType::kI32)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected u16 or i32 [B, S] token ids, got ", t.DebugString()));
  }
  if (window.begin < 0 || window.length < 1 || window.begin + window.length > t.dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": columns [", window.begin, ", ",
                                                   window.begin + window.length,
                                                   ") are not inside ", t.DebugString()));
  }
  if (t.dtype() == DType::kU16) return Gather<uint16_t>(window, vocab_size, what);
  return Gather<int32_t>(window, vocab_size, what);
}

}  // namespace usine
