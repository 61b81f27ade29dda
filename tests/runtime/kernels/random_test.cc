#include "runtime/kernels/random.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/kernels/internal/philox.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using kernels_internal::Philox4;
using kernels_internal::Philox4x32;
using testing::ReadTensor;

// Known-answer vectors for Philox4x32-10 published with Random123 (kat_vectors).
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    Philox4 counter;
    uint32_t k0, k1;
    Philox4 want;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& kat : kats) {
    const Philox4 got = Philox4x32(kat.counter, kat.k0, kat.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.x[i], kat.want.x[i]) << "lane " << i;
  }
}

// Our log and sin/cos (portable, FMA-free) against the C library, over their domains.
TEST(Philox, PortableMathIsAccurate) {
  for (uint32_t i = 1; i <= (1u << 24); i += 97) {
    const float u = static_cast<float>(i) * 5.9604644775390625e-8f;  // (0, 1]
    ASSERT_NEAR(kernels_internal::Log(u), std::log(static_cast<double>(u)),
                3e-7 * std::max(1.0, std::abs(std::log(static_cast<double>(u)))))
        << u;
    float s, c;
    kernels_internal::SinCosTurns(u == 1.0f ? 0.0f : u, &s, &c);
    const double angle = 2 * M_PI * (u == 1.0f ? 0.0 : u);
    ASSERT_NEAR(s, std::sin(angle), 1e-6) << u;
    ASSERT_NEAR(c, std::cos(angle), 1e-6) << u;
  }
}

class RandomTest : public testing::DeviceTest {
 protected:
  std::vector<float> Uniform(int64_t n, uint64_t seed, uint64_t offset, float lo = 0,
                             float hi = 1) {
    Tensor t = Tensor::Empty({n}, DType::kF32, device()).value();
    EXPECT_OK(RandomUniform(t, seed, offset, lo, hi));
    return ReadTensor<float>(t).value();
  }
  std::vector<float> Normal(int64_t n, uint64_t seed, uint64_t offset) {
    Tensor t = Tensor::Empty({n}, DType::kF32, device()).value();
    EXPECT_OK(RandomNormal(t, seed, offset));
    return ReadTensor<float>(t).value();
  }
};

TEST_P(RandomTest, ASplitFillEqualsOneFill) {
  const std::vector<float> whole = Normal(1001, 42, 3);
  const std::vector<float> head = Normal(5, 42, 3), tail = Normal(996, 42, 8);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(testing::Bits(whole[i]), testing::Bits(head[i]));
  for (int i = 0; i < 996; ++i) EXPECT_EQ(testing::Bits(whole[5 + i]), testing::Bits(tail[i]));
  const std::vector<float> uwhole = Uniform(1001, 42, 3), utail = Uniform(999, 42, 5);
  for (int i = 0; i < 999; ++i) EXPECT_EQ(testing::Bits(uwhole[2 + i]), testing::Bits(utail[i]));
}

// Each element is its own index's draw (philox.h), also where the fill is cut over threads.
TEST_P(RandomTest, EachElementIsTheDrawOfItsIndex) {
  const int64_t n = 200003;
  const std::vector<float> normal = Normal(n, 77, 5), uniform = Uniform(n, 77, 6, -2, 2);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t index = static_cast<uint64_t>(i);
    ASSERT_EQ(testing::Bits(normal[i]),
              testing::Bits(kernels_internal::NormalElement(77, 5 + index, 0.0f, 1.0f)))
        << i;
    ASSERT_EQ(testing::Bits(uniform[i]),
              testing::Bits(kernels_internal::UniformElement(77, 6 + index, -2.0f, 2.0f)))
        << i;
  }
}

TEST_P(RandomTest, DeterministicPerSeedAndDifferentAcrossSeeds) {
  EXPECT_EQ(Uniform(4096, 1, 0), Uniform(4096, 1, 0));
  EXPECT_NE(Uniform(4096, 1, 0), Uniform(4096, 2, 0));
  EXPECT_NE(Normal(4096, 1, 0), Normal(4096, uint64_t{1} << 32 | 1, 0));  // High key bits count.
}

// The cpu path is the reference; a device must give the same bits for the same (seed, offset).
TEST_P(RandomTest, MatchesTheCpuBitForBit) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    Tensor here = Tensor::Empty({70001}, dtype, device()).value();
    Tensor cpu = Tensor::Empty({70001}, dtype).value();
    ASSERT_OK(RandomNormal(here, 1234, 17, 0.0f, 0.02f));
    ASSERT_OK(RandomNormal(cpu, 1234, 17, 0.0f, 0.02f));
    EXPECT_EQ(testing::ReadBytes(here).value(), testing::ReadBytes(cpu).value())
        << DTypeName(dtype);
    ASSERT_OK(RandomUniform(here, 99, 5, -1.0f, 3.0f));
    ASSERT_OK(RandomUniform(cpu, 99, 5, -1.0f, 3.0f));
    EXPECT_EQ(testing::ReadBytes(here).value(), testing::ReadBytes(cpu).value())
        << DTypeName(dtype);
  }
}

TEST_P(RandomTest, UniformHasTheRightRangeAndMoments) {
  const int64_t n = 1 << 20;
  const std::vector<float> u = Uniform(n, 2024, 0, -2.0f, 6.0f);
  double sum = 0, squares = 0;
  for (float v : u) {
    ASSERT_GE(v, -2.0f);
    ASSERT_LT(v, 6.0f);
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double mean = sum / n, var = squares / n - mean * mean;
  EXPECT_NEAR(mean, 2.0, 0.01);         // sd of the mean: 8/sqrt(12 n) = 0.0023
  EXPECT_NEAR(var, 64.0 / 12.0, 0.03);  // 5.333
}

TEST_P(RandomTest, NormalHasTheRightMomentsAndTails) {
  const int64_t n = 1 << 20;
  const std::vector<float> z = Normal(n, 31337, 0);
  double sum = 0, squares = 0;
  int64_t within_one = 0, beyond_three = 0;
  for (float v : z) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    squares += static_cast<double>(v) * v;
    within_one += std::abs(v) < 1.0f;
    beyond_three += std::abs(v) > 3.0f;
  }
  const double mean = sum / n, var = squares / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.005);  // sd of the mean: 0.001
  EXPECT_NEAR(var, 1.0, 0.007);   // sd of the variance: 0.0014
  EXPECT_NEAR(static_cast<double>(within_one) / n, 0.682689, 0.003);
  EXPECT_NEAR(static_cast<double>(beyond_three) / n, 0.002700, 0.0004);
}

TEST_P(RandomTest, RejectsBadArguments) {
  Tensor ints = Tensor::Empty({4}, DType::kI32, device()).value();
  EXPECT_TRUE(absl::IsInvalidArgument(RandomNormal(ints, 1, 0)));
  Tensor f = Tensor::Empty({4}, DType::kF32, device()).value();
  EXPECT_TRUE(absl::IsInvalidArgument(RandomUniform(f, 1, 0, 2.0f, 1.0f)));
  EXPECT_TRUE(absl::IsInvalidArgument(RandomNormal(f, 1, 0, 0.0f, -1.0f)));
}

USINE_INSTANTIATE_DEVICE_TESTS(RandomTest);

}  // namespace
}  // namespace usine
