// Token ids for the decoder tests: the same context whichever chunks it is appended in.
//
//   decoder.Append(ContextIds(2, length, length + chunk));   // the next chunk
//   model.NextTokenLogits(ContextIds(2, 0, length));         // the whole context
#ifndef USINE_TESTS_RUNTIME_NN_CONTEXT_IDS_H_
#define USINE_TESTS_RUNTIME_NN_CONTEXT_IDS_H_

#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"
#include "tests/testing/device_test.h"

namespace usine::testing {

// Positions [begin, end) of `batch` sequences, a [batch, end - begin] i32 cpu tensor: sequence
// b, position t holds (131 b + 37 t + 5) mod 500 (ids of the tiny GPT's vocabulary).
inline Tensor ContextIds(int64_t batch, int64_t begin, int64_t end) {
  std::vector<int32_t> ids;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = begin; t < end; ++t) {
      ids.push_back(static_cast<int32_t>((131 * b + 37 * t + 5) % 500));
    }
  }
  return MakeTensor(Device::Cpu(), {batch, end - begin}, ids).value();
}

}  // namespace usine::testing

#endif  // USINE_TESTS_RUNTIME_NN_CONTEXT_IDS_H_
