#include "tests/runtime/nn/cuda_compare.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "tests/testing/device_test.h"

namespace usine::testing {

std::vector<float> RandomValues(int64_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed * 7919 + 17);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = uniform(rng);
  return values;
}

Tensor F32Tensor(Device device, const Shape& shape, const std::vector<float>& values) {
  absl::StatusOr<Tensor> t = MakeTensor(device, shape, values);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Tensor();
}

Tensor RepeatingIds(int64_t batch, int64_t seq, int64_t rows, int salt) {
  std::vector<int32_t> ids(batch * seq);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>((i * i * 7 + salt) % static_cast<size_t>(rows));
  }
  return MakeTensor(Device::Cpu(), {batch, seq}, ids).value();
}

TensorPair RandomPair(const Shape& shape, uint64_t seed, float scale) {
  const std::vector<float> values = RandomValues(shape.numel(), seed, scale);
  return {F32Tensor(Device::Cpu(), shape, values), F32Tensor(kCuda, shape, values)};
}

::testing::AssertionResult Close(const Tensor& cuda, const Tensor& cpu, double tolerance) {
  if (cuda.shape() != cpu.shape()) {
    return ::testing::AssertionFailure()
           << "shapes differ: cuda " << cuda.DebugString() << ", cpu " << cpu.DebugString();
  }
  absl::StatusOr<std::vector<float>> a = ReadTensor<float>(cuda);
  absl::StatusOr<std::vector<float>> b = ReadTensor<float>(cpu);
  if (!a.ok() || !b.ok()) {
    return ::testing::AssertionFailure() << "cannot read: " << a.status() << " " << b.status();
  }
  double diff2 = 0, ref2 = 0, worst = -1;
  size_t worst_at = 0;
  for (size_t i = 0; i < a->size(); ++i) {
    const double x = (*a)[i], y = (*b)[i];
    if (!std::isfinite(x)) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << cuda.DebugString() << " is " << x
             << " on CUDA (cpu: " << y << "): never written, or overflowed";
    }
    diff2 += (x - y) * (x - y);
    ref2 += y * y;
    if (std::abs(x - y) > worst) {
      worst = std::abs(x - y);
      worst_at = i;
    }
  }
  const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (rel <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "‖cuda − cpu‖ / ‖cpu‖ = " << rel << " > " << tolerance << " over " << cuda.DebugString()
         << "; largest difference at element " << worst_at << ": cuda " << (*a)[worst_at]
         << ", cpu " << (*b)[worst_at];
}

::testing::AssertionResult BitIdentical(const Tensor& a, const Tensor& b) {
  absl::StatusOr<std::vector<char>> x = ReadBytes(a);
  absl::StatusOr<std::vector<char>> y = ReadBytes(b);
  if (!x.ok() || !y.ok()) return ::testing::AssertionFailure() << "cannot read";
  if (*x == *y) return ::testing::AssertionSuccess();
  if (a.dtype() == DType::kF32 && x->size() == y->size()) {
    for (size_t i = 0; i < x->size() / 4; ++i) {
      float u, v;
      std::memcpy(&u, x->data() + 4 * i, 4);
      std::memcpy(&v, y->data() + 4 * i, 4);
      if (Bits(u) != Bits(v)) {
        return ::testing::AssertionFailure()
               << "first different element " << i << ": " << u << " vs " << v;
      }
    }
  }
  return ::testing::AssertionFailure() << "bytes differ";
}

void SetValues(const Tensor& t, const std::vector<float>& values) {
  const Tensor host = F32Tensor(Device::Cpu(), t.shape(), values);
  EXPECT_OK(Copy(host, t));
}

void RandomizeAlike(Module& cpu, Module& cuda, uint64_t seed) {
  std::vector<NamedParameter> a = cpu.Parameters(), b = cuda.Parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].name, b[i].name);
    const int64_t n = a[i].parameter->value.numel();
    std::vector<float> values = RandomValues(n, seed + 2 * i, 0.3f);
    if (a[i].name.find("ln") != std::string::npos && a[i].name.ends_with("weight")) {
      for (float& v : values) v += 1.0f;
    }
    const std::vector<float> grads = RandomValues(n, seed + 2 * i + 1, 0.1f);
    for (Parameter* p : {a[i].parameter, b[i].parameter}) {
      SetValues(p->value, values);
      SetValues(p->grad, grads);
    }
  }
}

void ExpectParametersClose(Module& cpu, Module& cuda, const std::string& context) {
  std::vector<NamedParameter> a = cpu.Parameters(), b = cuda.Parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(Close(b[i].parameter->grad, a[i].parameter->grad))
        << context << ": gradient of " << a[i].name;
    EXPECT_TRUE(Close(b[i].parameter->value, a[i].parameter->value))
        << context << ": value of " << a[i].name;
  }
}

namespace {

// `t` as f32 (a cast copy where it is bf16).
Tensor AsF32(const Tensor& t) {
  if (t.dtype() != DType::kBF16) return t;
  Tensor f32 = Tensor::Empty(t.shape(), DType::kF32, t.device()).value();
  EXPECT_OK(Cast(t, f32));
  return f32;
}

}  // namespace

void CompareLayerUnderBf16(Sublayer& cpu, Sublayer& cuda, Sublayer& again, const Shape& x_shape,
                           uint64_t seed, double tolerance, DType cuda_output_dtype) {
  RandomizeAlike(cpu, cuda, seed);
  RandomizeAlike(cpu, again, seed);
  const TensorPair x = RandomPair(x_shape, seed + 100, 2.0f);
  ASSERT_OK_AND_ASSIGN(const Tensor y_cpu, cpu.Forward(x.cpu));
  ASSERT_OK_AND_ASSIGN(const Tensor y, cuda.Forward(x.cuda));
  ASSERT_OK_AND_ASSIGN(const Tensor y_again, again.Forward(x.cuda));
  EXPECT_EQ(y.dtype(), cuda_output_dtype) << "output";
  EXPECT_TRUE(Close(AsF32(y), y_cpu, tolerance)) << "output";
  EXPECT_TRUE(BitIdentical(y, y_again)) << "output, twice";
  const TensorPair dy = RandomPair(y_cpu.shape(), seed + 200);
  ASSERT_OK_AND_ASSIGN(const Tensor dx_cpu, cpu.Backward(dy.cpu));
  ASSERT_OK_AND_ASSIGN(const Tensor dx, cuda.Backward(dy.cuda));
  ASSERT_OK_AND_ASSIGN(const Tensor dx_again, again.Backward(dy.cuda));
  EXPECT_TRUE(Close(AsF32(dx), dx_cpu, tolerance)) << "input gradient";
  EXPECT_TRUE(BitIdentical(dx, dx_again)) << "input gradient, twice";
  const std::vector<NamedParameter> want = cpu.Parameters(), got = cuda.Parameters(),
                                    got_again = again.Parameters();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(Close(got[i].parameter->grad, want[i].parameter->grad, tolerance))
        << "gradient of " << want[i].name;
    EXPECT_TRUE(BitIdentical(got[i].parameter->grad, got_again[i].parameter->grad))
        << "gradient of " << want[i].name << ", twice";
  }
}

void Poison(const Tensor& t) { EXPECT_OK(Fill(t, std::numeric_limits<double>::quiet_NaN())); }

}  // namespace usine::testing
