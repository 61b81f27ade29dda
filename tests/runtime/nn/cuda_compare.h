// Helpers of the CUDA-versus-cpu tests of the layers (cuda_layers_test.cc, cuda_gpt_test.cc,
// cuda_tensor_parallel_test.cc): the same random values on both devices, and the comparison
// ‖cuda − cpu‖ / ‖cpu‖ with a message that names the worst element.
#ifndef USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_
#define USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

#include "runtime/core/device.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"
#include "runtime/nn/sublayer.h"
#include "runtime/nn/tokens.h"
#include "tests/testing/device_test.h"

namespace usine::testing {

// A fixture whose cases skip where there is no CUDA device.
class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  }
};

// Both paths compute in f32; the CUDA kernels sum in other orders (trees over warps and
// blocks, cuBLAS's own blocking), so results differ by a few f32 roundings per reduction:
// ‖cuda − cpu‖ / ‖cpu‖ <= 1e-5 over a whole tensor is what they must meet.
inline constexpr double kCudaRelTolerance = 1e-5;

// The CUDA device the tests use.
inline constexpr Device kCuda = Device::Cuda(0);

// Uniform values in [-scale, scale), a function of `seed` (never all zero).
std::vector<float> RandomValues(int64_t n, uint64_t seed, float scale = 1.0f);

// An f32 tensor on `device` holding `values`.
Tensor F32Tensor(Device device, const Shape& shape, const std::vector<float>& values);

// The same random f32 values on the cpu and on kCuda.
struct TensorPair {
  Tensor cpu;
  Tensor cuda;
};
TensorPair RandomPair(const Shape& shape, uint64_t seed, float scale = 1.0f);

// Success when `cuda` and `cpu` have the same shape, every CUDA element is finite (an element
// a kernel never wrote keeps the NaN it was poisoned with) and ‖cuda − cpu‖ / ‖cpu‖ <=
// tolerance.
::testing::AssertionResult Close(const Tensor& cuda, const Tensor& cpu,
                                 double tolerance = kCudaRelTolerance);

// Success when both tensors hold the same bits.
::testing::AssertionResult BitIdentical(const Tensor& a, const Tensor& b);

// Sets `t` (any device) to `values`.
void SetValues(const Tensor& t, const std::vector<float>& values);

// Gives the parameters of two modules of the same architecture (one on the cpu, one on kCuda)
// the same random values (in [-0.3, 0.3), but the weights of a model's LayerNorms, named
// "...ln...weight", around 1), and their gradients the same random values too, so that a Backward
// that overwrites instead of adding fails.
void RandomizeAlike(Module& cpu, Module& cuda, uint64_t seed);

// Checks every parameter's gradient, and value, of the CUDA module against the cpu one.
void ExpectParametersClose(Module& cpu, Module& cuda, const std::string& context);

// Under bf16 products (the caller sets the precision): Forward and Backward of the CUDA layer
// against the cpu's emulation of them, within `tolerance` of the norms (the output, which must
// be in `cuda_output_dtype` and is cast to f32 where it is bf16; the input gradient; the
// parameters' gradients), and of a second CUDA layer, `again`, bit for bit. The three get the
// same random parameters from `seed`; x is RandomPair(x_shape, ...) within ±2.
void CompareLayerUnderBf16(Sublayer& cpu, Sublayer& cuda, Sublayer& again, const Shape& x_shape,
                           uint64_t seed, double tolerance, DType cuda_output_dtype);

// Fills `t` with NaN.
void Poison(const Tensor& t);

// Ids [batch, seq] in [0, rows) (i32, cpu) with many repeats (a small range), so that an
// embedding's backward groups positions; `salt` varies them.
Tensor RepeatingIds(int64_t batch, int64_t seq, int64_t rows, int salt);

// Looks up the same repeating ids (RepeatingIds(3, 41, rows, salt), positions [1, 41)) in a
// token embedding on each device (Embedding or VocabParallelEmbedding) after RandomizeAlike,
// and checks the output and the table's gradient bit for bit: each row adds its positions in
// increasing order on both devices.
template <typename TokenEmbedding>
void ExpectEmbeddingsBitIdentical(TokenEmbedding& cpu, TokenEmbedding& cuda, int64_t rows, int salt,
                                  uint64_t seed) {
  RandomizeAlike(cpu, cuda, seed);
  const Tensor ids = RepeatingIds(3, 41, rows, salt);
  ASSERT_OK_AND_ASSIGN(Tensor x_cpu, cpu.Forward(TokenWindow{ids, 1, 40}));
  ASSERT_OK_AND_ASSIGN(Tensor x_cuda, cuda.Forward(TokenWindow{ids, 1, 40}));
  EXPECT_EQ(x_cuda.device(), kCuda);
  EXPECT_TRUE(BitIdentical(x_cuda, x_cpu)) << "forward";
  const TensorPair dx = RandomPair(x_cpu.shape(), seed + 1);
  ASSERT_OK(cpu.Backward(dx.cpu));
  ASSERT_OK(cuda.Backward(dx.cuda));
  EXPECT_TRUE(BitIdentical(cuda.weight().grad, cpu.weight().grad)) << "gradient";
}

// Runs Forward and Backward of a layer mapping x -> y on both devices and compares y, dx and
// the parameters' gradients.
template <typename Layer>
void CompareLayer(Layer& cpu, Layer& cuda, const Shape& x_shape, uint64_t seed,
                  const std::function<absl::StatusOr<Tensor>(Layer&, const Tensor&)>& forward,
                  const std::function<absl::StatusOr<Tensor>(Layer&, const Tensor&)>& backward,
                  const std::string& what) {
  SCOPED_TRACE(what);
  RandomizeAlike(cpu, cuda, seed);
  const TensorPair x = RandomPair(x_shape, seed + 100, 2.0f);
  ASSERT_OK_AND_ASSIGN(Tensor y_cpu, forward(cpu, x.cpu));
  ASSERT_OK_AND_ASSIGN(Tensor y_cuda, forward(cuda, x.cuda));
  EXPECT_EQ(y_cuda.device(), kCuda);
  EXPECT_TRUE(Close(y_cuda, y_cpu)) << "output";
  const TensorPair dy = RandomPair(y_cpu.shape(), seed + 200);
  ASSERT_OK_AND_ASSIGN(Tensor dx_cpu, backward(cpu, dy.cpu));
  ASSERT_OK_AND_ASSIGN(Tensor dx_cuda, backward(cuda, dy.cuda));
  EXPECT_TRUE(Close(dx_cuda, dx_cpu)) << "input gradient";
  ExpectParametersClose(cpu, cuda, what);
}

}  // namespace usine::testing

#endif  // USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_
