#include "runtime/kernels/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;

// Integer-valued inputs in [-3, 3]: every product and partial sum is an exact float, so
// the expected outputs are exact whatever order the library sums in.
std::vector<float> Ints(int64_t n, int salt) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 5 + i / 11 + salt * 3) % 7) - 3.0f;
  return v;
}

// Reference: c = alpha * op(a) op(b) + beta * c + bias, row-major, in double.
std::vector<float> Reference(const std::vector<float>& a, const std::vector<float>& b,
                             std::vector<float> c, const std::vector<float>& bias, int64_t m,
                             int64_t n, int64_t k, bool ta, bool tb, float alpha, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = ta ? a[p * m + i] : a[i * k + p];
        const double y = tb ? b[j * k + p] : b[p * n + j];
        acc += x * y;
      }
      double out = alpha * acc + (beta == 0 ? 0.0 : beta * c[i * n + j]);
      if (!bias.empty()) out += bias[j];
      c[i * n + j] = static_cast<float>(out);
    }
  }
  return c;
}

using Case = std::tuple<Device, bool, bool>;  // device, transpose_a, transpose_b

class MatmulTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (device().is_cuda() && CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  }
  Device device() const { return std::get<0>(GetParam()); }
  bool ta() const { return std::get<1>(GetParam()); }
  bool tb() const { return std::get<2>(GetParam()); }
};

TEST_P(MatmulTest, MatchesTheReferenceExactlyOnIntegerData) {
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                         {3, 5, 7},
                         {64, 33, 17},
                         {128, 256, 64},
                         // Large enough for the cpu to cut c over its threads: by rows, and
                         // (more columns than rows) by columns.
                         {1000, 96, 200},
                         {96, 150, 1100},
                         {5, 0, 4}}) {
    const std::vector<float> a = Ints(m * k, 1), b = Ints(k * n, 2), c0 = Ints(m * n, 3);
    const std::vector<float> bias = Ints(n, 4);
    const Shape a_shape = ta() ? Shape{k, m} : Shape{m, k};
    const Shape b_shape = tb() ? Shape{n, k} : Shape{k, n};
    ASSERT_OK_AND_ASSIGN(Tensor ta_, MakeTensor(device(), a_shape, a));
    ASSERT_OK_AND_ASSIGN(Tensor tb_, MakeTensor(device(), b_shape, b));
    ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(device(), {n}, bias));
    for (auto [alpha, beta, with_bias] : {std::tuple<float, float, bool>{1, 0, false},
                                          {2, 0, true},
                                          {1, 1, false},
                                          {-1, 0.5f, true}}) {
      ASSERT_OK_AND_ASSIGN(Tensor tc, MakeTensor(device(), {m, n}, c0));
      MatmulOptions options{.transpose_a = ta(),
                            .transpose_b = tb(),
                            .alpha = alpha,
                            .beta = beta,
                            .bias = with_bias ? &tbias : nullptr};
      ASSERT_OK(Matmul(ta_, tb_, tc, options));
      ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(tc));
      EXPECT_EQ(got, Reference(a, b, c0, with_bias ? bias : std::vector<float>{}, m, n, k, ta(),
                               tb(), alpha, beta))
          << "m=" << m << " k=" << k << " n=" << n << " alpha=" << alpha << " beta=" << beta
          << " bias=" << with_bias;
    }
  }
}

// An addend stands in for c's old values (c <- alpha op(a) op(b) + beta addend + bias), c's
// own old values are ignored and the addend is left as it was; an addend that is c itself is
// the product in place. Exact on integer data, for empty products and pieces cut over threads.
TEST_P(MatmulTest, AnAddendStandsInForTheOldValuesOfC) {
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{3, 5, 7},
                         {1000, 96, 200},
                         {96, 150, 1100},
                         {5, 0, 4}}) {
    const std::vector<float> a = Ints(m * k, 1), b = Ints(k * n, 2), r = Ints(m * n, 3);
    const std::vector<float> bias = Ints(n, 4), junk = Ints(m * n, 5);
    ASSERT_OK_AND_ASSIGN(Tensor ta_, MakeTensor(device(), ta() ? Shape{k, m} : Shape{m, k}, a));
    ASSERT_OK_AND_ASSIGN(Tensor tb_, MakeTensor(device(), tb() ? Shape{n, k} : Shape{k, n}, b));
    ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(device(), {n}, bias));
    ASSERT_OK_AND_ASSIGN(Tensor tr, MakeTensor(device(), {m, n}, r));
    // beta 0: the addend is not read, as c's old values would not be.
    for (auto [alpha, beta, with_bias] : {std::tuple<float, float, bool>{1, 1, false},
                                          {1, 1, true},
                                          {-1, 0.5f, true},
                                          {2, 0, true}}) {
      const std::vector<float> want = Reference(a, b, r, with_bias ? bias : std::vector<float>{}, m,
                                                n, k, ta(), tb(), alpha, beta);
      MatmulOptions options{.transpose_a = ta(),
                            .transpose_b = tb(),
                            .alpha = alpha,
                            .beta = beta,
                            .bias = with_bias ? &tbias : nullptr,
                            .addend = &tr};
      ASSERT_OK_AND_ASSIGN(Tensor tc, MakeTensor(device(), {m, n}, junk));
      ASSERT_OK(Matmul(ta_, tb_, tc, options));
      EXPECT_EQ(ReadTensor<float>(tc).value(), want)
          << "m=" << m << " k=" << k << " n=" << n << " alpha=" << alpha << " beta=" << beta
          << " bias=" << with_bias;
      EXPECT_EQ(ReadTensor<float>(tr).value(), r);
      ASSERT_OK_AND_ASSIGN(Tensor in_place, MakeTensor(device(), {m, n}, r));
      options.addend = &in_place;
      ASSERT_OK(Matmul(ta_, tb_, in_place, options));
      EXPECT_EQ(ReadTensor<float>(in_place).value(), want) << "in place";
    }
  }
}

// Debian's OpenBLAS sums a long K in float, so compare with a tolerance scaled by K.
TEST_P(MatmulTest, CloseToDoublePrecisionOnFractionalData) {
  const int64_t m = 96, k = 1000, n = 80;
  std::vector<float> a(m * k), b(k * n);
  for (int64_t i = 0; i < m * k; ++i) a[i] = std::sin(0.37f * static_cast<float>(i));
  for (int64_t i = 0; i < k * n; ++i) b[i] = std::cos(0.11f * static_cast<float>(i));
  ASSERT_OK_AND_ASSIGN(Tensor ta_, MakeTensor(device(), ta() ? Shape{k, m} : Shape{m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb_, MakeTensor(device(), tb() ? Shape{n, k} : Shape{k, n}, b));
  ASSERT_OK_AND_ASSIGN(Tensor tc, Tensor::Empty({m, n}, DType::kF32, device()));
  ASSERT_OK(Matmul(ta_, tb_, tc, {.transpose_a = ta(), .transpose_b = tb()}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(tc));
  const std::vector<float> want =
      Reference(a, b, std::vector<float>(m * n), {}, m, n, k, ta(), tb(), 1, 0);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << i;
}

// Each product of a batch is its own: different data per product, checked against the
// reference product by product. Integer data stay exact in TF32 and bf16, so every precision
// gives the same bits (on CUDA: one strided-batch call, with casts first in bf16).
TEST_P(MatmulTest, BatchedProductsMatchTheReferenceOneByOne) {
  for (const MatmulPrecision precision :
       {MatmulPrecision::kF32, MatmulPrecision::kTf32, MatmulPrecision::kBf16}) {
    testing::ScopedMatmulPrecision scoped(precision);
    for (auto [batch, m, k, n] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 3, 5, 7},
                                  {5, 17, 8, 33},
                                  {12, 128, 64, 128},
                                  {3, 4, 0, 6}}) {
      const std::vector<float> a = Ints(batch * m * k, 1), b = Ints(batch * k * n, 2);
      const std::vector<float> c0 = Ints(batch * m * n, 3);
      ASSERT_OK_AND_ASSIGN(Tensor ta_,
                           MakeTensor(device(), ta() ? Shape{batch, k, m} : Shape{batch, m, k}, a));
      ASSERT_OK_AND_ASSIGN(Tensor tb_,
                           MakeTensor(device(), tb() ? Shape{batch, n, k} : Shape{batch, k, n}, b));
      ASSERT_OK_AND_ASSIGN(Tensor tc, MakeTensor(device(), {batch, m, n}, c0));
      const float alpha = 2, beta = 0.5f;
      ASSERT_OK(BatchedMatmul(
          ta_, tb_, tc, {.transpose_a = ta(), .transpose_b = tb(), .alpha = alpha, .beta = beta}));
      ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(tc));
      if (batch > 1 && m * n > 1) {  // The products differ, so that a wrong stride shows.
        EXPECT_NE(std::vector<float>(got.begin(), got.begin() + m * n),
                  std::vector<float>(got.begin() + m * n, got.begin() + 2 * m * n));
      }
      for (int64_t i = 0; i < batch; ++i) {
        const auto part = [i](const std::vector<float>& v, int64_t size) {
          return std::vector<float>(v.begin() + i * size, v.begin() + (i + 1) * size);
        };
        EXPECT_EQ(part(got, m * n), Reference(part(a, m * k), part(b, k * n), part(c0, m * n), {},
                                              m, n, k, ta(), tb(), alpha, beta))
            << "product " << i << " of " << batch << ", m=" << m << " k=" << k << " n=" << n << ", "
            << MatmulPrecisionName(precision);
      }
    }
  }
}

// A layer rounds an operand once (ProductOperand) for several products: on CUDA under kBf16 a
// bf16 copy whose products are Matmul's own, bit for bit; otherwise (the cpu rounds in Matmul,
// and f32 and TF32 round nothing ahead) the operand is the tensor itself.
TEST_P(MatmulTest, ProductOperandsGiveMatmulsOwnRounding) {
  const int64_t m = 37, k = 70, n = 29;
  std::vector<float> a(m * k), b(k * n);
  for (int64_t i = 0; i < m * k; ++i) a[i] = std::sin(0.37f * static_cast<float>(i));
  for (int64_t i = 0; i < k * n; ++i) b[i] = std::cos(0.11f * static_cast<float>(i));
  ASSERT_OK_AND_ASSIGN(Tensor ta_, MakeTensor(device(), ta() ? Shape{k, m} : Shape{m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb_, MakeTensor(device(), tb() ? Shape{n, k} : Shape{k, n}, b));
  for (const MatmulPrecision precision :
       {MatmulPrecision::kF32, MatmulPrecision::kTf32, MatmulPrecision::kBf16}) {
    testing::ScopedMatmulPrecision scoped(precision);
    ASSERT_OK_AND_ASSIGN(Tensor operand, ProductOperand(ta_));
    const bool rounded = device().is_cuda() && precision == MatmulPrecision::kBf16;
    EXPECT_EQ(operand.raw_data() != ta_.raw_data(), rounded) << MatmulPrecisionName(precision);
    EXPECT_EQ(operand.dtype(), rounded ? DType::kBF16 : DType::kF32);
  }
  const MatmulOptions options{.transpose_a = ta(), .transpose_b = tb()};
  ASSERT_OK_AND_ASSIGN(Tensor direct, Tensor::Empty({m, n}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor rounded, Tensor::Empty({m, n}, DType::kF32, device()));
  {
    testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
    ASSERT_OK(Matmul(ta_, tb_, direct, options));
    ASSERT_OK_AND_ASSIGN(Tensor a16, ProductOperand(ta_));
    ASSERT_OK_AND_ASSIGN(Tensor b16, ProductOperand(tb_));
    ASSERT_OK(Matmul(a16, b16, rounded, options));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(direct));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(rounded));
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Cpu, MatmulTest,
                         ::testing::Combine(::testing::Values(Device::Cpu()), ::testing::Bool(),
                                            ::testing::Bool()));
INSTANTIATE_TEST_SUITE_P(Cuda, MatmulTest,
                         ::testing::Combine(::testing::Values(Device::Cuda(0)), ::testing::Bool(),
                                            ::testing::Bool()));

class MatmulShapesTest : public testing::DeviceTest {};

TEST_P(MatmulShapesTest, LeadingDimensionsOfAAreFlattenedIntoRows) {
  const std::vector<float> a = Ints(2 * 3 * 4, 5), b = Ints(4 * 6, 6);
  ASSERT_OK_AND_ASSIGN(Tensor ta_, MakeTensor(device(), {2, 3, 4}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb_, MakeTensor(device(), {4, 6}, b));
  ASSERT_OK_AND_ASSIGN(Tensor tc, Tensor::Empty({2, 3, 6}, DType::kF32, device()));
  ASSERT_OK(Matmul(ta_, tb_, tc));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(tc));
  EXPECT_EQ(got, Reference(a, b, std::vector<float>(36), {}, 6, 6, 4, false, false, 1, 0));
}

TEST_P(MatmulShapesTest, BatchedShapeErrorsNameTheProblem) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({3, 4, 5}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({3, 5, 6}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({3, 4, 6}, DType::kF32, device()));
  ASSERT_OK(BatchedMatmul(a, b, c));
  ASSERT_OK_AND_ASSIGN(Tensor b2, Tensor::Empty({2, 5, 6}, DType::kF32, device()));
  EXPECT_THAT(std::string(BatchedMatmul(a, b2, c).message()), HasSubstr("BatchedMatmul b"));
  ASSERT_OK_AND_ASSIGN(Tensor flat, Tensor::Empty({4, 5}, DType::kF32, device()));
  EXPECT_THAT(std::string(BatchedMatmul(flat, b, c).message()),
              HasSubstr("expected [batch, rows, cols]"));
  EXPECT_THAT(std::string(BatchedMatmul(a, b, c, {.transpose_b = true}).message()),
              HasSubstr("inner dimensions differ"));
  ASSERT_OK_AND_ASSIGN(Tensor c2, Tensor::Empty({3, 4, 5}, DType::kF32, device()));
  EXPECT_THAT(std::string(BatchedMatmul(a, b, c2).message()), HasSubstr("BatchedMatmul c"));
  ASSERT_OK_AND_ASSIGN(Tensor bias, Tensor::Empty({6}, DType::kF32, device()));
  EXPECT_THAT(std::string(BatchedMatmul(a, b, c, {.bias = &bias}).message()), HasSubstr("bias"));
}

TEST_P(MatmulShapesTest, ShapeAndDTypeErrorsNameTheProblem) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4, 5}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({6, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({4, 3}, DType::kF32, device()));
  EXPECT_THAT(std::string(Matmul(a, b, c).message()), HasSubstr("inner dimensions differ"));
  ASSERT_OK_AND_ASSIGN(Tensor b2, Tensor::Empty({5, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c2, Tensor::Empty({4, 4}, DType::kF32, device()));
  EXPECT_THAT(std::string(Matmul(a, b2, c2).message()),
              HasSubstr("Matmul c: expected shape [4, 3]"));
  ASSERT_OK_AND_ASSIGN(Tensor bias, Tensor::Empty({4}, DType::kF32, device()));
  EXPECT_THAT(std::string(Matmul(a, b2, c, {.bias = &bias}).message()),
              HasSubstr("Matmul bias: expected shape [3]"));
  ASSERT_OK_AND_ASSIGN(Tensor alias, a.View(0, {4, 3}));
  ASSERT_OK_AND_ASSIGN(Tensor sq, Tensor::Empty({5, 3}, DType::kF32, device()));
  EXPECT_THAT(std::string(Matmul(a, sq, alias).message()), HasSubstr("overlaps"));
  ASSERT_OK_AND_ASSIGN(Tensor ints, Tensor::Empty({4, 5}, DType::kI32, device()));
  EXPECT_THAT(std::string(Matmul(ints, b2, c).message()), HasSubstr("dtype mismatch"));
}

TEST_P(MatmulShapesTest, AddendErrorsNameTheProblem) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4, 5}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({5, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({4, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor wide, Tensor::Empty({4, 4}, DType::kF32, device()));
  EXPECT_THAT(std::string(Matmul(a, b, c, {.beta = 1, .addend = &wide}).message()),
              HasSubstr("Matmul addend: expected shape [4, 3]"));
  ASSERT_OK_AND_ASSIGN(Tensor f64, Tensor::Empty({4, 3}, DType::kF64));
  EXPECT_THAT(std::string(Matmul(a, b, c, {.beta = 1, .addend = &f64}).message()),
              HasSubstr("Matmul addend"));
  // An input may share memory with it (both are only read); the output may not.
  ASSERT_OK_AND_ASSIGN(Tensor in_a, a.View(0, {4, 3}));
  EXPECT_OK(Matmul(a, b, c, {.beta = 1, .addend = &in_a}));
  ASSERT_OK_AND_ASSIGN(Tensor all, Tensor::Empty({13}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c_part, all.View(0, {4, 3}));
  ASSERT_OK_AND_ASSIGN(Tensor shifted, all.View(1, {4, 3}));
  EXPECT_THAT(std::string(Matmul(a, b, c_part, {.beta = 1, .addend = &shifted}).message()),
              HasSubstr("overlaps the output c"));
  ASSERT_OK_AND_ASSIGN(Tensor a3, Tensor::Empty({1, 4, 5}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor b3, Tensor::Empty({1, 5, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor c3, Tensor::Empty({1, 4, 3}, DType::kF32, device()));
  ASSERT_OK_AND_ASSIGN(Tensor r3, Tensor::Empty({1, 4, 3}, DType::kF32, device()));
  EXPECT_THAT(std::string(BatchedMatmul(a3, b3, c3, {.beta = 1, .addend = &r3}).message()),
              HasSubstr("no addend"));
}

TEST(MatmulCpu, Bf16IsCudaOnly) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({2, 2}, DType::kBF16));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({2, 2}, DType::kF32));
  EXPECT_THAT(std::string(Matmul(a, a, c).message()), HasSubstr("cpu: f32 or f64"));
}

TEST(MatmulCpu, GeluEpilogueErrorsNameTheProblem) {
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({2, 3}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor b, Tensor::Empty({3, 4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({2, 4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor aux, Tensor::Empty({2, 4}, DType::kF32));
  EXPECT_THAT(
      std::string(
          Matmul(a, b, c, {.epilogue = MatmulEpilogue::kGelu, .gelu_input = &aux}).message()),
      HasSubstr("needs bf16 a, b and c on CUDA"));
  EXPECT_THAT(
      std::string(Matmul(a, b, c, {.epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &aux})
                      .message()),
      HasSubstr("GELU-gradient epilogue needs bf16 a, b and c on CUDA"));
  EXPECT_THAT(std::string(Matmul(a, b, c, {.gelu_input = &aux}).message()),
              HasSubstr("without the GELU epilogue"));
  ASSERT_OK_AND_ASSIGN(Tensor a3, Tensor::Empty({1, 2, 3}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor b3, Tensor::Empty({1, 3, 4}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(Tensor c3, Tensor::Empty({1, 2, 4}, DType::kF32));
  EXPECT_THAT(std::string(BatchedMatmul(a3, b3, c3, {.epilogue = MatmulEpilogue::kGelu}).message()),
              HasSubstr("no epilogue"));
}

// f64 goes through dgemm: products of values that are not exact in f32 keep f64 precision.
TEST(MatmulCpu, F64TransposedWithBiasMatchesTheReferenceInDoublePrecision) {
  const int64_t m = 5, k = 7, n = 3;
  std::vector<double> a(k * m), b(n * k), bias(n);
  for (int64_t i = 0; i < k * m; ++i) a[i] = 1.0 / (i + 3);
  for (int64_t i = 0; i < n * k; ++i) b[i] = std::sqrt(static_cast<double>(i + 2));
  for (int64_t i = 0; i < n; ++i) bias[i] = 0.1 * static_cast<double>(i);
  ASSERT_OK_AND_ASSIGN(Tensor ta, MakeTensor(Device::Cpu(), {k, m}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, MakeTensor(Device::Cpu(), {n, k}, b));
  ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(Device::Cpu(), {n}, bias));
  ASSERT_OK_AND_ASSIGN(Tensor tc, Tensor::Empty({m, n}, DType::kF64));
  ASSERT_OK(Matmul(ta, tb, tc, {.transpose_a = true, .transpose_b = true, .bias = &tbias}));
  ASSERT_OK_AND_ASSIGN(std::vector<double> got, ReadTensor<double>(tc));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = bias[j];
      for (int64_t p = 0; p < k; ++p) want += a[p * m + i] * b[j * k + p];
      EXPECT_NEAR(got[i * n + j], want, 1e-14 * std::abs(want)) << i << "," << j;
    }
  }
}

USINE_INSTANTIATE_DEVICE_TESTS(MatmulShapesTest);

// `values` rounded to bf16 in a tensor on cuda:0.
absl::StatusOr<Tensor> Bf16OnGpu(const Shape& shape, const std::vector<float>& values) {
  std::vector<BFloat16> rounded;
  for (float v : values) rounded.push_back(BFloat16::FromFloat(v));
  return MakeTensor(Device::Cuda(0), shape, rounded);
}

// bf16 inputs with f32 accumulation, on the GPU: exact on small integers.
TEST(MatmulGpuTest, Bf16InputsAccumulateInFloat) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 64, k = 512, n = 48;
  const std::vector<float> a = Ints(m * k, 7), b = Ints(k * n, 8), bias = Ints(n, 9);
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor ta, Bf16OnGpu({m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, Bf16OnGpu({n, k}, b));  // Stored transposed.
  ASSERT_OK_AND_ASSIGN(Tensor c32, Tensor::Empty({m, n}, DType::kF32, gpu));
  ASSERT_OK(Matmul(ta, tb, c32, {.transpose_b = true}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(c32));
  EXPECT_EQ(got, Reference(a, b, std::vector<float>(m * n), {}, m, n, k, false, true, 1, 0));
  // bf16 output with a fused bf16 bias: the exact result rounded once to bf16.
  ASSERT_OK_AND_ASSIGN(Tensor tbias, Bf16OnGpu({n}, bias));
  ASSERT_OK_AND_ASSIGN(Tensor c16, Tensor::Empty({m, n}, DType::kBF16, gpu));
  ASSERT_OK(Matmul(ta, tb, c16, {.transpose_b = true, .bias = &tbias}));
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> got16, ReadTensor<BFloat16>(c16));
  const std::vector<float> want =
      Reference(a, b, std::vector<float>(m * n), bias, m, n, k, false, true, 1, 0);
  for (int64_t i = 0; i < m * n; ++i) {
    ASSERT_EQ(got16[i].bits, FloatToBFloat16Bits(want[i])) << i;
  }
}

// bf16 inputs added to an f32 addend with an f32 bias, into f32 (a residual stream plus a
// projection, as LinearProduct makes it): exact on small integers.
TEST(MatmulGpuTest, Bf16InputsAddToAnF32Addend) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 64, k = 512, n = 48;
  const std::vector<float> a = Ints(m * k, 7), b = Ints(k * n, 8), bias = Ints(n, 9);
  const std::vector<float> r = Ints(m * n, 10);
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor ta, Bf16OnGpu({m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, Bf16OnGpu({n, k}, b));  // Stored transposed.
  ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(gpu, {n}, bias));
  ASSERT_OK_AND_ASSIGN(Tensor tr, MakeTensor(gpu, {m, n}, r));
  ASSERT_OK_AND_ASSIGN(Tensor c32, Tensor::Empty({m, n}, DType::kF32, gpu));
  ASSERT_OK(Matmul(ta, tb, c32, {.transpose_b = true, .beta = 1, .bias = &tbias, .addend = &tr}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(c32));
  EXPECT_EQ(got, Reference(a, b, r, bias, m, n, k, false, true, 1, 1));
  // An addend less aligned than c, after an aligned one of the same product: cuBLASLt is told
  // the addend's own alignment, and the algorithm chosen for the first is not reused for it
  // (the emulator refuses a pointer less aligned than its algorithm was promised).
  ASSERT_OK_AND_ASSIGN(Tensor spare, Tensor::Empty({m * n + 1}, DType::kF32, gpu));
  ASSERT_OK_AND_ASSIGN(Tensor shifted, spare.View(1, {m, n}));
  ASSERT_OK(Copy(tr, shifted));
  ASSERT_OK(
      Matmul(ta, tb, c32, {.transpose_b = true, .beta = 1, .bias = &tbias, .addend = &shifted}));
  EXPECT_EQ(ReadTensor<float>(c32).value(), Reference(a, b, r, bias, m, n, k, false, true, 1, 1));
}

// GPT-2's GELU (tanh approximation) in double.
double Gelu(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

// cuBLASLt's GELU epilogue on bf16 operands: the GELU's input is the product plus the bias,
// which here are exact in bf16 (multiples of 2^-6 under 4 in magnitude: eighths times eighths,
// sixteen terms), so it must hold them bit for bit; the output is the GELU of those values
// rounded to bf16, within a bf16 step (cuBLASLt computes its own tanh). With and without a
// bias; the first product with this epilogue that the training step makes (the MLP's c_fc).
TEST(MatmulGpuTest, GeluEpilogueIsTheProductThenGelu) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 40, k = 16, n = 24;
  std::vector<float> a = Ints(m * k, 3), b = Ints(n * k, 4), bias = Ints(n, 5);
  for (std::vector<float>* v : {&a, &b, &bias}) {
    for (float& x : *v) x /= 8.0f;
  }
  const std::vector<float> zero(n, 0.0f);
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor ta, Bf16OnGpu({m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, Bf16OnGpu({n, k}, b));  // Stored transposed.
  ASSERT_OK_AND_ASSIGN(Tensor tbias, Bf16OnGpu({n}, bias));
  for (const bool with_bias : {true, false}) {
    SCOPED_TRACE(with_bias ? "with bias" : "without bias");
    ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({m, n}, DType::kBF16, gpu));
    ASSERT_OK_AND_ASSIGN(Tensor aux, Tensor::Empty({m, n}, DType::kBF16, gpu));
    ASSERT_OK(Matmul(ta, tb, c,
                     {.transpose_b = true,
                      .bias = with_bias ? &tbias : nullptr,
                      .epilogue = MatmulEpilogue::kGelu,
                      .gelu_input = &aux}));
    const std::vector<float> want = Reference(a, b, std::vector<float>(m * n),
                                              with_bias ? bias : zero, m, n, k, false, true, 1, 0);
    ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> got_aux, ReadTensor<BFloat16>(aux));
    ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> got, ReadTensor<BFloat16>(c));
    for (int64_t i = 0; i < m * n; ++i) {
      ASSERT_EQ(got_aux[i].bits, FloatToBFloat16Bits(want[i])) << "GELU input " << i;
      const double gelu = Gelu(want[i]);
      EXPECT_NEAR(got[i].ToFloat(), gelu, std::ldexp(std::max(std::abs(gelu), 0.05), -7))
          << "output " << i << " (GELU of " << want[i] << ")";
    }
  }
}

// GELU's derivative (tanh approximation) in double.
double GeluDerivative(double x) {
  const double k = 0.7978845608028654, t = std::tanh(k * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

// cuBLASLt's DGELU epilogue (kGeluGradient) on bf16 operands, as the MLP's c_proj backward
// pass runs it: the product r (exact here, as above) times GELU's derivative at the bf16 GELU
// input, rounded to bf16, within a bf16 step of the double value (and, where the derivative
// cancels near x = -0.75, 2^-9 |r|: cuBLASLt computes its own tanh); the GELU input unchanged.
// It takes no bias, no addend and beta 0.
TEST(MatmulGpuTest, GeluGradientEpilogueIsTheProductTimesTheDerivative) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 40, k = 16, n = 24;
  std::vector<float> a = Ints(m * k, 6), b = Ints(k * n, 7);
  for (std::vector<float>* v : {&a, &b}) {
    for (float& x : *v) x /= 8.0f;
  }
  std::vector<float> h(m * n);
  for (int64_t i = 0; i < m * n; ++i) h[i] = 3.0f * std::sin(0.37f * static_cast<float>(i));
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor ta, Bf16OnGpu({m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, Bf16OnGpu({k, n}, b));
  ASSERT_OK_AND_ASSIGN(Tensor th, Bf16OnGpu({m, n}, h));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({m, n}, DType::kBF16, gpu));
  ASSERT_OK(Matmul(ta, tb, c, {.epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &th}));
  const std::vector<float> r =
      Reference(a, b, std::vector<float>(m * n), {}, m, n, k, false, false, 1, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> got, ReadTensor<BFloat16>(c));
  ASSERT_OK_AND_ASSIGN(std::vector<BFloat16> h_after, ReadTensor<BFloat16>(th));
  for (int64_t i = 0; i < m * n; ++i) {
    ASSERT_EQ(h_after[i].bits, FloatToBFloat16Bits(h[i])) << "GELU input " << i;
    const double x = h_after[i].ToFloat(), want = r[i] * GeluDerivative(x);
    EXPECT_NEAR(got[i].ToFloat(), want,
                std::ldexp(std::abs(want), -7) + std::ldexp(std::abs(r[i]), -9))
        << "output " << i << " (" << r[i] << " gelu'(" << x << "))";
  }
  ASSERT_OK_AND_ASSIGN(Tensor bias, Tensor::Empty({n}, DType::kBF16, gpu));
  EXPECT_THAT(
      std::string(
          Matmul(ta, tb, c,
                 {.bias = &bias, .epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &th})
              .message()),
      HasSubstr("takes no bias, no addend and beta 0"));
  ASSERT_OK_AND_ASSIGN(Tensor addend, Tensor::Empty({m, n}, DType::kBF16, gpu));
  EXPECT_THAT(std::string(Matmul(ta, tb, c,
                                 {.beta = 1,
                                  .epilogue = MatmulEpilogue::kGeluGradient,
                                  .gelu_input = &th,
                                  .addend = &addend})
                              .message()),
              HasSubstr("takes no bias, no addend and beta 0"));
  EXPECT_THAT(
      std::string(
          Matmul(ta, tb, c,
                 {.beta = 0.5f, .epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &th})
              .message()),
      HasSubstr("beta 0.5"));
  EXPECT_THAT(
      std::string(Matmul(ta, tb, c, {.epilogue = MatmulEpilogue::kGeluGradient, .gelu_input = &c})
                      .message()),
      HasSubstr("overlaps c"));
}

// Values that bf16 cannot hold (so that rounding them shows), sin- and cos-shaped.
std::vector<float> Fractions(int64_t n, float step, float offset) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = std::sin(step * static_cast<float>(i)) + offset;
  return v;
}

// `values` rounded to bf16 (to nearest, ties to even), as floats.
std::vector<float> RoundedToBf16(const std::vector<float>& values) {
  std::vector<float> rounded(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    rounded[i] = BFloat16BitsToFloat(FloatToBFloat16Bits(values[i]));
  }
  return rounded;
}

// TF32: products of f32 tensors near the exact result (operands rounded to 10-bit mantissas:
// relative error well under 1e-2), and not the bits of the f32 product, which shows the mode
// took effect; back at f32, the f32 product comes back bit for bit.
TEST(MatmulGpuTest, Tf32IsCloseToTheExactProductAndCanBeTurnedOff) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 96, k = 256, n = 80;
  const std::vector<float> a = Fractions(m * k, 0.37f, 0.01f), b = Fractions(k * n, 0.11f, -0.02f);
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor ta, MakeTensor(gpu, {m, k}, a));
  ASSERT_OK_AND_ASSIGN(Tensor tb, MakeTensor(gpu, {k, n}, b));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({m, n}, DType::kF32, gpu));
  ASSERT_EQ(F32MatmulPrecision(), MatmulPrecision::kF32);
  ASSERT_OK(Matmul(ta, tb, c));
  ASSERT_OK_AND_ASSIGN(std::vector<float> strict, ReadTensor<float>(c));
  {
    testing::ScopedMatmulPrecision tf32(MatmulPrecision::kTf32);
    ASSERT_OK(Matmul(ta, tb, c));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<float> tf32, ReadTensor<float>(c));
  double error = 0, norm = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0;
      for (int64_t p = 0; p < k; ++p) exact += static_cast<double>(a[i * k + p]) * b[p * n + j];
      error += (tf32[i * n + j] - exact) * (tf32[i * n + j] - exact);
      norm += exact * exact;
    }
  }
  EXPECT_LT(std::sqrt(error / norm), 1e-2);
  EXPECT_NE(tf32, strict) << "TF32 gave the f32 product's bits: the mode did not take effect";
  ASSERT_OK(Matmul(ta, tb, c));
  ASSERT_OK_AND_ASSIGN(std::vector<float> again, ReadTensor<float>(c));
  EXPECT_EQ(again, strict);
}

// bf16 precision on the cpu: the f32 product of the operands rounded to bf16, bit for bit (the
// same sgemm on the same values), with the transposes, beta and the bias; not the f32 product
// of the operands as given; f64 products and TF32 (on the cpu) untouched.
TEST(MatmulTest, Bf16PrecisionOnTheCpuMultipliesTheOperandsRoundedToBf16) {
  const int64_t m = 33, k = 70, n = 21;
  const std::vector<float> a = Fractions(m * k, 0.37f, 0.01f), b = Fractions(k * n, 0.11f, -0.02f);
  const std::vector<float> bias = Fractions(n, 0.5f, 0.003f), start = Fractions(m * n, 0.7f, 0.f);
  const Device cpu = Device::Cpu();
  ASSERT_OK_AND_ASSIGN(Tensor ta, MakeTensor(cpu, {k, m}, a));  // Used transposed.
  ASSERT_OK_AND_ASSIGN(Tensor tb, MakeTensor(cpu, {n, k}, b));  // Used transposed.
  ASSERT_OK_AND_ASSIGN(Tensor ra, MakeTensor(cpu, {k, m}, RoundedToBf16(a)));
  ASSERT_OK_AND_ASSIGN(Tensor rb, MakeTensor(cpu, {n, k}, RoundedToBf16(b)));
  ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(cpu, {n}, bias));
  const MatmulOptions options{
      .transpose_a = true, .transpose_b = true, .beta = 0.5f, .bias = &tbias};
  // c <- the product of (a, b) with `options`, starting from `start`.
  const auto product = [&](const Tensor& x, const Tensor& y) -> absl::StatusOr<std::vector<float>> {
    ASSIGN_OR_RETURN(Tensor c, MakeTensor(cpu, {m, n}, start));
    RETURN_IF_ERROR(Matmul(x, y, c, options));
    return ReadTensor<float>(c);
  };
  ASSERT_OK_AND_ASSIGN(const std::vector<float> of_rounded, product(ra, rb));
  ASSERT_OK_AND_ASSIGN(const std::vector<float> f32, product(ta, tb));
  // An f64 product of the same values, as f64 products always run.
  std::vector<double> a64(a.begin(), a.end()), b64(b.begin(), b.end());
  ASSERT_OK_AND_ASSIGN(Tensor da, MakeTensor(cpu, {m, k}, a64));
  ASSERT_OK_AND_ASSIGN(Tensor db, MakeTensor(cpu, {k, n}, b64));
  ASSERT_OK_AND_ASSIGN(Tensor dc, Tensor::Empty({m, n}, DType::kF64));
  ASSERT_OK(Matmul(da, db, dc));
  ASSERT_OK_AND_ASSIGN(const std::vector<double> f64, ReadTensor<double>(dc));
  std::vector<float> bf16, tf32;
  {
    testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
    ASSERT_OK_AND_ASSIGN(bf16, product(ta, tb));
    ASSERT_OK(Matmul(da, db, dc));
  }
  ASSERT_OK_AND_ASSIGN(const std::vector<double> f64_in_bf16_mode, ReadTensor<double>(dc));
  EXPECT_EQ(f64_in_bf16_mode, f64) << "an f64 product was rounded";
  {
    testing::ScopedMatmulPrecision precision(MatmulPrecision::kTf32);
    ASSERT_OK_AND_ASSIGN(tf32, product(ta, tb));
  }
  EXPECT_EQ(bf16, of_rounded);
  EXPECT_NE(bf16, f32) << "bf16 precision gave the f32 product: the mode did not take effect";
  EXPECT_EQ(tf32, f32);
  EXPECT_EQ(F32MatmulPrecision(), MatmulPrecision::kF32);
}

// The cpu's emulation of a bf16 product output: under bf16 products an f32 cpu tensor's values
// rounded to bf16 in place, bit for bit; under f32 and TF32 products, and for an f64 tensor,
// nothing.
TEST(MatmulTest, EmulatedProductOperandOutputIsRoundedToBf16UnderBf16Only) {
  const std::vector<float> values = Fractions(257, 0.37f, 0.01f);
  ASSERT_OK_AND_ASSIGN(Tensor c, MakeTensor(Device::Cpu(), {257}, values));
  for (MatmulPrecision precision : {MatmulPrecision::kF32, MatmulPrecision::kTf32}) {
    testing::ScopedMatmulPrecision scoped(precision);
    ASSERT_OK(EmulateProductOperandOutput(c));
    EXPECT_EQ(ReadTensor<float>(c).value(), values) << MatmulPrecisionName(precision);
  }
  testing::ScopedMatmulPrecision bf16(MatmulPrecision::kBf16);
  std::vector<double> wide(values.begin(), values.end());
  ASSERT_OK_AND_ASSIGN(Tensor c64, MakeTensor(Device::Cpu(), {257}, wide));
  ASSERT_OK(EmulateProductOperandOutput(c64));
  EXPECT_EQ(ReadTensor<double>(c64).value(), wide) << "f64";
  ASSERT_OK(EmulateProductOperandOutput(c));
  EXPECT_EQ(ReadTensor<float>(c).value(), RoundedToBf16(values));
  EXPECT_NE(RoundedToBf16(values), values);
}

// bf16 precision on CUDA (bf16 tensor cores, f32 accumulation) against the cpu's emulation:
// the same rounded operands, so only the order of the f32 sums differs (relative 1e-5 of the
// result's norm); far from that agreement, the f32 product.
TEST(MatmulGpuTest, Bf16PrecisionMatchesTheCpusEmulation) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << CudaUnavailableReason();
  const int64_t m = 96, k = 256, n = 80;
  const std::vector<float> a = Fractions(m * k, 0.37f, 0.01f), b = Fractions(k * n, 0.11f, -0.02f);
  const std::vector<float> bias = Fractions(n, 0.5f, 0.003f);
  std::vector<float> on[2], f32;
  for (const Device device : {Device::Cpu(), Device::Cuda(0)}) {
    ASSERT_OK_AND_ASSIGN(Tensor ta, MakeTensor(device, {m, k}, a));
    ASSERT_OK_AND_ASSIGN(Tensor tb, MakeTensor(device, {n, k}, b));
    ASSERT_OK_AND_ASSIGN(Tensor tbias, MakeTensor(device, {n}, bias));
    ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({m, n}, DType::kF32, device));
    {
      testing::ScopedMatmulPrecision precision(MatmulPrecision::kBf16);
      ASSERT_OK(Matmul(ta, tb, c, {.transpose_b = true, .bias = &tbias}));
    }
    ASSERT_OK_AND_ASSIGN(on[device.is_cuda()], ReadTensor<float>(c));
    if (device.is_cuda()) continue;
    ASSERT_OK(Matmul(ta, tb, c, {.transpose_b = true, .bias = &tbias}));
    ASSERT_OK_AND_ASSIGN(f32, ReadTensor<float>(c));
  }
  const auto relative = [&](const std::vector<float>& x, const std::vector<float>& y) {
    double error = 0, norm = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      error += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
      norm += static_cast<double>(y[i]) * y[i];
    }
    return std::sqrt(error / norm);
  };
  EXPECT_LT(relative(on[1], on[0]), 1e-5);
  EXPECT_GT(relative(f32, on[0]), 1e-4) << "the rounding to bf16 changed nothing";
}

}  // namespace
}  // namespace usine
