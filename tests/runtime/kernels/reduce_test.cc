#include "runtime/kernels/reduce.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/kernels/random.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

class ReduceTest : public testing::DeviceTest {};

// Small integers: every partial sum is exact in f32, so the expected result is exact.
TEST_P(ReduceTest, SumAndNormOfIntegerValuedDataAreExact) {
  // Up to ~1M elements the sum of squares stays below 2^24, so f32 partial sums are exact too.
  for (int64_t n : {0, 1, 255, 256, 1023, 1024, 1025, 65537, 1000003}) {
    std::vector<float> x(n);
    double sum = 0, squares = 0;
    for (int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 7) - 3.0f + (i % 3 == 0 ? 1.0f : 0.0f);
      sum += x[i];
      squares += static_cast<double>(x[i]) * x[i];
    }
    ASSERT_OK_AND_ASSIGN(Tensor t, MakeTensor(device(), {n}, x));
    ASSERT_OK_AND_ASSIGN(float got_sum, SumToHost(t));
    ASSERT_OK_AND_ASSIGN(float got_norm, L2NormToHost(t));
    EXPECT_EQ(got_sum, static_cast<float>(sum)) << n;
    EXPECT_EQ(got_norm, std::sqrt(static_cast<float>(squares))) << n;
  }
}

TEST_P(ReduceTest, SameInputSameBitsAndCloseToDoublePrecision) {
  const int64_t n = 1 << 20;
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({n}, DType::kF32, device()));
  ASSERT_OK(RandomNormal(t, /*seed=*/7, /*offset=*/0, 0.5f, 2.0f));
  ASSERT_OK_AND_ASSIGN(std::vector<float> x, ReadTensor<float>(t));
  double want = 0;
  for (float v : x) want += v;
  ASSERT_OK_AND_ASSIGN(float first, SumToHost(t));
  for (int run = 0; run < 3; ++run) {
    ASSERT_OK_AND_ASSIGN(float again, SumToHost(t));
    EXPECT_EQ(testing::Bits(again), testing::Bits(first));
  }
  EXPECT_NEAR(first, want, 1e-5 * std::abs(want) + 1e-2);
}

TEST_P(ReduceTest, LowPrecisionInputsAccumulateInFloat) {
  std::vector<BFloat16> x(4096, BFloat16::FromFloat(1.0f));  // 4096 > bf16's exact integers.
  ASSERT_OK_AND_ASSIGN(Tensor t, MakeTensor(device(), {4096}, x));
  ASSERT_OK_AND_ASSIGN(float sum, SumToHost(t));
  EXPECT_EQ(sum, 4096.0f);
  ASSERT_OK_AND_ASSIGN(float norm, L2NormToHost(t));
  EXPECT_EQ(norm, 64.0f);
}

TEST_P(ReduceTest, DeviceResidentResultOnAStream) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  ASSERT_OK_AND_ASSIGN(Tensor x, MakeTensor<float>(device(), {2, 2}, {3, 0, 0, 4}));
  ASSERT_OK_AND_ASSIGN(Tensor norm, Tensor::Empty({}, DType::kF32, device()));
  ASSERT_OK(L2Norm(x, norm, stream));
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(norm));
  EXPECT_EQ(got, std::vector<float>{5.0f});
}

TEST_P(ReduceTest, OutputMustBeOneFloatOnTheSameDevice) {
  ASSERT_OK_AND_ASSIGN(Tensor x, Tensor::Empty({8}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor two, Tensor::Empty({2}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor half, Tensor::Empty({}, DType::kF16, device()));
  ASSERT_OK_AND_ASSIGN(Tensor ints, Tensor::Empty({8}, DType::kI32, device()));
  EXPECT_THAT(std::string(Sum(x, two).message()), HasSubstr("Sum out: expected one element"));
  EXPECT_THAT(std::string(L2Norm(x, half).message()), HasSubstr("L2Norm out: expected dtype f32"));
  EXPECT_TRUE(absl::IsInvalidArgument(SumToHost(ints).status()));
}

// Many tensors' norms at once (more than one launch's 48 on CUDA, of sizes from empty to
// over a launch's widest grid): each with L2Norm's bits.
TEST_P(ReduceTest, NormsOfManyTensorsHaveEachNormsBits) {
  std::vector<Tensor> xs;
  for (int i = 0; i < 100; ++i) {
    const int64_t n = i == 0 ? 0 : (i * i * 37) % 5000 + (i % 10 == 0 ? 300000 : 0);
    ASSERT_OK_AND_ASSIGN(Tensor x, Tensor::Empty({n}, DType::kF32, device()));
    ASSERT_OK(RandomNormal(x, /*seed=*/11, /*offset=*/1000 * i, 0.1f, 1.0f));
    xs.push_back(x);
  }
  ASSERT_OK_AND_ASSIGN(Tensor norms, Tensor::Empty({100}, DType::kF32, device()));
  ASSERT_OK(L2Norms(xs, norms));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(norms));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(float want, L2NormToHost(xs[i]));
    EXPECT_EQ(testing::Bits(got[i]), testing::Bits(want)) << "tensor " << i;
  }
  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({3}, DType::kBF16, device()));
  EXPECT_THAT(std::string(L2Norms({xs[1], bf16}, norms.View(0, {2}).value()).message()),
              HasSubstr("L2Norms xs[1]"));
  EXPECT_THAT(std::string(L2Norms(xs, norms.View(0, {2}).value()).message()),
              HasSubstr("expected 100 elements"));
}

USINE_INSTANTIATE_DEVICE_TESTS(ReduceTest);

}  // namespace
}  // namespace usine
