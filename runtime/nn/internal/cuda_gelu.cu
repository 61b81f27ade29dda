// GELU kernels behind cuda_gelu.h: the cpu's formula (cpu_gelu.cc) in f32.
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_gelu.h"
#include "runtime/nn/internal/cuda_grid.cuh"

namespace usine::nn_internal::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kCubic = 0.044715f;

template <typename TOut>
__global__ void GeluForwardKernel(const float* x, int64_t n, TOut* y) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float v = x[i];
    const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
    y[i] = kernels_internal::FromFloat<TOut>(0.5f * v * (1.0f + tanhf(u)));
  }
}

__global__ void GeluBackwardKernel(const float* x, const float* dy, int64_t n, float* dx) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float v = x[i];
    const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
    const float t = tanhf(u);
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    const float grad = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
    dx[i] = dy[i] * grad;
  }
}

}  // namespace

template <typename TOut>
cudaError_t LaunchGeluForward(const float* x, int64_t n, TOut* y, cudaStream_t stream) {
  return LaunchElementwise(GeluForwardKernel<TOut>, n, stream, x, n, y);
}

template cudaError_t LaunchGeluForward<float>(const float*, int64_t, float*, cudaStream_t);
template cudaError_t LaunchGeluForward<BFloat16>(const float*, int64_t, BFloat16*, cudaStream_t);

cudaError_t LaunchGeluBackward(const float* x, const float* dy, int64_t n, float* dx,
                               cudaStream_t stream) {
  return LaunchElementwise(GeluBackwardKernel, n, stream, x, dy, n, dx);
}

}  // namespace usine::nn_internal::cuda
