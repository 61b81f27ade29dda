// Helpers of the CUDA-versus-cpu tests of the layers (cuda_layers_test.cc, cuda_gpt_test.cc):
// the same random values on both devices, and the comparison ‖cuda − cpu‖ / ‖cpu‖ with a
// message that names the worst element.
#ifndef USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_
#define USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/device.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine::testing {

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
// the same random values (LayerNorm weights around 1), and their gradients the same random
// values too, so that a Backward that overwrites instead of adding fails.
void RandomizeAlike(Module& cpu, Module& cuda, uint64_t seed);

// Checks every parameter's gradient, and value, of the CUDA module against the cpu one.
void ExpectParametersClose(Module& cpu, Module& cuda, const std::string& context);

// Fills `t` with NaN.
void Poison(const Tensor& t);

}  // namespace usine::testing

#endif  // USINE_TESTS_RUNTIME_NN_CUDA_COMPARE_H_
