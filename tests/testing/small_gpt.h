// A GPT small enough for exact checks of its weights' round trips (checkpoint, import, export):
// its config, and its logits on a fixed input, which agree bit for bit between two models
// exactly when their weights do.
//
//   ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = SmallGptConfig(), .seed = 3}));
//   EXPECT_EQ(FixedLogits(*loaded), FixedLogits(*model));
#ifndef USINE_TESTS_TESTING_SMALL_GPT_H_
#define USINE_TESTS_TESTING_SMALL_GPT_H_

#include <cstdint>
#include <vector>

#include "runtime/nn/gpt.h"
#include "tests/testing/device_test.h"

namespace usine::testing {

// Vocabulary 40, block 8, 2 layers, 2 heads, 8 wide.
inline GptConfig SmallGptConfig() { return GptConfig{"small", 40, 8, 2, 2, 8}; }

// The logits of a fixed [2, 6] input of a SmallGptConfig() model.
inline std::vector<float> FixedLogits(Gpt& model) {
  Tensor inputs = Tensor::Empty({2, 6}, DType::kI32).value();
  for (int i = 0; i < 12; ++i) static_cast<int32_t*>(inputs.raw_data())[i] = (i * 7 + 3) % 40;
  return ReadTensor<float>(model.Logits(inputs).value()).value();
}

}  // namespace usine::testing

#endif  // USINE_TESTS_TESTING_SMALL_GPT_H_
