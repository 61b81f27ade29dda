// Token ids as the layers take them: a window of columns of a [B, S] tensor of u16 or i32
// ids on the cpu, so that a DataStream batch [B, T+1] serves as the inputs (columns [0, T))
// and the targets (columns [1, T+1)) without a copy.
//
//   const TokenWindow inputs{batch.tokens, /*begin=*/0, /*length=*/T};
//   const TokenWindow targets{batch.tokens, /*begin=*/1, /*length=*/T};
#ifndef USINE_RUNTIME_NN_TOKENS_H_
#define USINE_RUNTIME_NN_TOKENS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/tensor.h"

namespace usine {

struct TokenWindow {
  Tensor tokens;       // [B, S], u16 or i32, on the cpu.
  int64_t begin = 0;   // First column used.
  int64_t length = 0;  // Columns used: [begin, begin + length).

  int64_t batch() const { return tokens.rank() == 2 ? tokens.dim(0) : 0; }
};

// The window's ids, row by row ([B * length]), after checking the tensor (defined, rank 2,
// u16 or i32, cpu), the window (inside the rows) and every id (in [0, vocab_size)). Errors
// name `what` and, for a bad id, its row and column.
[[nodiscard]] absl::StatusOr<std::vector<int32_t>> ReadTokenIds(const TokenWindow& window,
                                                                int64_t vocab_size,
                                                                absl::string_view what);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_TOKENS_H_
