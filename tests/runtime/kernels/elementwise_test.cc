#include "runtime/kernels/elementwise.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// Index-derived values with fractions, signs and a range that exercises rounding.
std::vector<float> Ramp(int64_t n, float scale = 0.37f, float shift = -50.0f) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * scale + shift;
  return v;
}

template <typename T>
std::vector<T> Round(const std::vector<float>& v) {
  std::vector<T> out;
  for (float f : v) out.push_back(T::FromFloat(f));
  return out;
}

template <typename T>
std::vector<uint16_t> Bits16(const std::vector<T>& v) {
  std::vector<uint16_t> out;
  for (T x : v) out.push_back(x.bits);
  return out;
}

class ElementwiseTest : public testing::DeviceTest {};

TEST_P(ElementwiseTest, FillWritesEveryElementOfEveryDType) {
  const int64_t n = 1000003;  // Odd, and more than one CUDA grid's worth of threads.
  ASSERT_OK_AND_ASSIGN(Tensor f32, Tensor::Empty({n}, DType::kF32, device()));
  ASSERT_OK(Fill(f32, 2.5));
  ASSERT_OK_AND_ASSIGN(std::vector<float> f, ReadTensor<float>(f32));
  EXPECT_EQ(f, std::vector<float>(n, 2.5f));

  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({7, 3}, DType::kBF16, device()));
  ASSERT_OK(Fill(bf16, 0.1));
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> b, ReadTensor<BFloat16>(bf16));
  for (BFloat16 x : b) EXPECT_EQ(x.bits, FloatToBFloat16Bits(0.1f));

  ASSERT_OK_AND_ASSIGN(Tensor i64, Tensor::Empty({5}, DType::kI64, device()));
  ASSERT_OK(Fill(i64, 1099511627779.0));  // 2^40 + 3: exact in a double, beyond 32 bits.
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> l, ReadTensor<int64_t>(i64));
  EXPECT_EQ(l, std::vector<int64_t>(5, (int64_t{1} << 40) + 3));

  ASSERT_OK_AND_ASSIGN(Tensor u8, Tensor::Empty({9}, DType::kU8, device()));
  ASSERT_OK(Fill(u8, 255));
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> u, ReadTensor<uint8_t>(u8));
  EXPECT_EQ(u, std::vector<uint8_t>(9, 255));

  ASSERT_OK_AND_ASSIGN(Tensor i32, Tensor::Empty({3}, DType::kI32, device()));
  ASSERT_OK(Fill(i32, -7));
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> i, ReadTensor<int32_t>(i32));
  EXPECT_EQ(i, std::vector<int32_t>(3, -7));
}

TEST_P(ElementwiseTest, FillRejectsUnrepresentableValuesAndWritesNothing) {
  ASSERT_OK_AND_ASSIGN(Tensor u8, MakeTensor<uint8_t>(device(), {3}, {1, 2, 3}));
  EXPECT_TRUE(absl::IsInvalidArgument(Fill(u8, 256)));
  EXPECT_TRUE(absl::IsInvalidArgument(Fill(u8, -1)));
  EXPECT_TRUE(absl::IsInvalidArgument(Fill(u8, 1.5)));
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> kept, ReadTensor<uint8_t>(u8));
  EXPECT_EQ(kept, (std::vector<uint8_t>{1, 2, 3}));
  ASSERT_OK_AND_ASSIGN(Tensor i64, Tensor::Empty({1}, DType::kI64, device()));
  EXPECT_TRUE(absl::IsInvalidArgument(Fill(i64, 9.3e18)));
  EXPECT_TRUE(absl::IsInvalidArgument(Fill(Tensor(), 0)));
}

TEST_P(ElementwiseTest, CastRoundsToNearestEvenBothWays) {
  const std::vector<float> values = Ramp(4099);
  ASSERT_OK_AND_ASSIGN(Tensor src, MakeTensor(device(), {4099}, values));
  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({4099}, DType::kBF16, device()));
  ASSERT_OK_AND_ASSIGN(Tensor f16, Tensor::Empty({4099}, DType::kF16, device()));
  ASSERT_OK(Cast(src, bf16));
  ASSERT_OK(Cast(src, f16));
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> b, ReadTensor<BFloat16>(bf16));
  ASSERT_OK_AND_ASSIGN(std::vector<Float16> h, ReadTensor<Float16>(f16));
  EXPECT_EQ(Bits16(b), Bits16(Round<BFloat16>(values)));
  EXPECT_EQ(Bits16(h), Bits16(Round<Float16>(values)));

  // bf16 -> f16 goes through the exact float value.
  ASSERT_OK_AND_ASSIGN(Tensor f16_from_bf16, Tensor::Empty({4099}, DType::kF16, device()));
  ASSERT_OK(Cast(bf16, f16_from_bf16));
  ASSERT_OK_AND_ASSIGN(std::vector<Float16> hb, ReadTensor<Float16>(f16_from_bf16));
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(hb[i].bits, FloatToFloat16Bits(b[i].ToFloat())) << i;
  }
  ASSERT_OK_AND_ASSIGN(Tensor back, Tensor::Empty({4099}, DType::kF32, device()));
  ASSERT_OK(Cast(f16, back));
  ASSERT_OK_AND_ASSIGN(std::vector<float> f, ReadTensor<float>(back));
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(f[i], h[i].ToFloat()) << i;
}

TEST_P(ElementwiseTest, CastRejectsIntegersShapeMismatchAndInPlaceResize) {
  ASSERT_OK_AND_ASSIGN(Tensor f32, Tensor::Empty({4}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor i32, Tensor::Empty({4}, DType::kI32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({5}, DType::kBF16, device()));
  EXPECT_THAT(std::string(Cast(i32, f32).message()), HasSubstr("Cast src: expected f32, bf16"));
  EXPECT_THAT(std::string(Cast(f32, bf16).message()), HasSubstr("shape mismatch"));
  ASSERT_OK_AND_ASSIGN(Tensor as_bf16, Tensor::Empty({8}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor half_view, as_bf16.View(0, {8}));
  ASSERT_OK_AND_ASSIGN(Tensor big, Tensor::Empty({8}, DType::kF16, device()));
  EXPECT_OK(Cast(as_bf16, big));
  EXPECT_OK(Cast(as_bf16, half_view));  // Same dtype: a copy in place.
}

TEST_P(ElementwiseTest, ScaleAxpyAddMatchTheSameFloatArithmetic) {
  const int64_t n = 100001;
  const std::vector<float> x = Ramp(n), y = Ramp(n, -0.11f, 7.0f);
  ASSERT_OK_AND_ASSIGN(Tensor tx, MakeTensor(device(), {n}, x));
  ASSERT_OK_AND_ASSIGN(Tensor ty, MakeTensor(device(), {n}, y));
  ASSERT_OK_AND_ASSIGN(Tensor out, Tensor::Empty({n}, DType::kF32, device()));

  ASSERT_OK(Add(tx, ty, out));
  ASSERT_OK_AND_ASSIGN(std::vector<float> sum, ReadTensor<float>(out));
  ASSERT_OK(Axpy(-0.5f, tx, ty));
  ASSERT_OK_AND_ASSIGN(std::vector<float> axpy, ReadTensor<float>(ty));
  ASSERT_OK(Scale(tx, 3.0f));
  ASSERT_OK_AND_ASSIGN(std::vector<float> scaled, ReadTensor<float>(tx));
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(sum[i], x[i] + y[i]) << i;
    const float product = -0.5f * x[i];  // Two roundings, as the contract says: no FMA.
    ASSERT_EQ(axpy[i], product + y[i]) << i;
    ASSERT_EQ(scaled[i], 3.0f * x[i]) << i;
  }
}

TEST_P(ElementwiseTest, LowPrecisionArithmeticRoundsOnceFromFloat) {
  const std::vector<float> x = Ramp(1025, 0.013f, -3.0f), y = Ramp(1025, 0.021f, 1.0f);
  const std::vector<BFloat16> bx = Round<BFloat16>(x), by = Round<BFloat16>(y);
  ASSERT_OK_AND_ASSIGN(Tensor tx, MakeTensor(device(), {1025}, bx));
  ASSERT_OK_AND_ASSIGN(Tensor ty, MakeTensor(device(), {1025}, by));
  ASSERT_OK(Axpy(2.0f, tx, ty));
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> got, ReadTensor<BFloat16>(ty));
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = 2.0f * bx[i].ToFloat() + by[i].ToFloat();
    ASSERT_EQ(got[i].bits, FloatToBFloat16Bits(want)) << i;
  }
  const std::vector<Float16> hx = Round<Float16>(x);
  ASSERT_OK_AND_ASSIGN(Tensor th, MakeTensor(device(), {1025}, hx));
  ASSERT_OK(Add(th, th, th));  // In place.
  ASSERT_OK_AND_ASSIGN(std::vector<Float16> doubled, ReadTensor<Float16>(th));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(doubled[i].bits, FloatToFloat16Bits(hx[i].ToFloat() * 2.0f)) << i;
  }
}

TEST_P(ElementwiseTest, MismatchesAreErrorsThatNameTheArguments) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({2, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({3, 2}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor h, Tensor::Empty({2, 3}, DType::kF16, device()));
  EXPECT_THAT(std::string(Axpy(1, a, b).message()), HasSubstr("Axpy x"));
  EXPECT_THAT(std::string(Add(a, h, a).message()), HasSubstr("dtype mismatch"));
  ASSERT_OK_AND_ASSIGN(Tensor ints, Tensor::Empty({2}, DType::kI64, device()));
  EXPECT_TRUE(absl::IsInvalidArgument(Scale(ints, 2)));
}

TEST_P(ElementwiseTest, StreamsMustMatchTheTensorsDevice) {
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({4}, DType::kF32, device()));
  const Stream wrong = device().is_cpu() ? Stream::Default(Device::Cuda(0))
                                         : Stream::Default(Device::Cuda(device().index() + 1));
  const absl::Status s = Fill(t, 1, wrong);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Fill"));
}

TEST_P(ElementwiseTest, AsynchronousOnAStreamThenSynchronized) {
  ASSERT_OK_AND_ASSIGN(Stream stream, Stream::Create(device()));
  ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Empty({1 << 20}, DType::kF32, device(), stream.handle()));
  ASSERT_OK(Fill(t, 1.0, stream));
  ASSERT_OK(Scale(t, 4.0f, stream));
  ASSERT_OK(Axpy(0.5f, t, t, stream));
  ASSERT_OK(stream.Synchronize());
  ASSERT_OK_AND_ASSIGN(std::vector<float> v, ReadTensor<float>(t));
  EXPECT_EQ(v, std::vector<float>(1 << 20, 6.0f));
}

// Many tensors scaled at once (more than one launch's 48 on CUDA, of sizes from empty to over a
// launch's widest grid) hold what scaling each alone gives, bit for bit; filled at once, they
// hold the value everywhere.
TEST_P(ElementwiseTest, ScalingAndFillingManyTensorsDoEachAlike) {
  std::vector<Tensor> many, one_by_one;
  for (int i = 0; i < 100; ++i) {
    const int64_t n = i == 0 ? 0 : (i * i * 37) % 5000 + (i % 10 == 0 ? 300000 : 0);
    std::vector<float> values(n);
    for (int64_t j = 0; j < n; ++j) values[j] = static_cast<float>((j * 7 + i) % 1001) * 0.37f;
    ASSERT_OK_AND_ASSIGN(Tensor a, MakeTensor(device(), {n}, values));
    ASSERT_OK_AND_ASSIGN(Tensor b, MakeTensor(device(), {n}, values));
    many.push_back(a);
    one_by_one.push_back(b);
  }
  ASSERT_OK(Scale(many, 0.123f));
  for (const Tensor& t : one_by_one) ASSERT_OK(Scale(t, 0.123f));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(many[i]));
    ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(one_by_one[i]));
    ASSERT_EQ(got, want) << "tensor " << i;
  }
  ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty({3}, DType::kBF16, device()));
  EXPECT_THAT(std::string(Scale({many[1], bf16}, 2.0f).message()), HasSubstr("Scale xs[1]"));

  // Filled at once, NaNs included (as a skipped step leaves gradients): every element.
  ASSERT_OK(Fill(many, std::nan("")));
  ASSERT_OK(Fill(many, -1.5));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(many[i]));
    ASSERT_EQ(got, std::vector<float>(got.size(), -1.5f)) << "tensor " << i;
  }
  EXPECT_THAT(std::string(Fill({many[1], bf16}, 0.0).message()), HasSubstr("Fill ts[1]"));
}

USINE_INSTANTIATE_DEVICE_TESTS(ElementwiseTest);

}  // namespace
}  // namespace usine
