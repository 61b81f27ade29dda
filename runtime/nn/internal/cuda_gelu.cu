// GELU kernels behind cuda_gelu.h: the cpu's formula (cpu_gelu.cc) in f32.
#include "runtime/kernels/internal/float_convert.h"
#include "runtime/nn/internal/cuda_gelu.h"
#include "runtime/nn/internal/cuda_grid.cuh"
#include "runtime/nn/internal/cuda_reduce.cuh"

namespace usine::nn_internal::cuda {
namespace {

namespace ki = kernels_internal;

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kCubic = 0.044715f;
// 3 * 0.044715 rounded once to f32, as the cpu's GeluSlope has it (3.0f * kCubic is an ulp below).
constexpr float kThreeCubic = static_cast<float>(3 * 0.044715);

__device__ inline float GeluGradient(float v) {
  const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
  const float t = tanhf(u);
  const float du = kSqrt2OverPi * (1.0f + kThreeCubic * v * v);
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
}

template <typename TOut>
__global__ void GeluForwardKernel(const float* x, int64_t n, TOut* y) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    const float v = x[i];
    const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
    y[i] = ki::FromFloat<TOut>(0.5f * v * (1.0f + tanhf(u)));
  }
}

template <typename TIn, typename TDy, typename TOut>
__global__ void GeluBackwardKernel(const TIn* x, const TDy* dy, int64_t n, TOut* dx) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    dx[i] = ki::FromFloat<TOut>(ki::ToFloat(dy[i]) * GeluGradient(ki::ToFloat(x[i])));
  }
}

// The gradient at (r, c) for the column sums, written to dx as it is read.
template <typename TIn, typename TDy, typename TOut>
struct GeluGradientElement {
  const TIn* x;
  const TDy* dy;
  int64_t cols;
  TOut* dx;
  __device__ float operator()(int64_t r, int64_t c) const {
    const int64_t i = r * cols + c;
    const float g = ki::ToFloat(dy[i]) * GeluGradient(ki::ToFloat(x[i]));
    dx[i] = ki::FromFloat<TOut>(g);
    return g;
  }
};

}  // namespace

template <typename TOut>
cudaError_t LaunchGeluForward(const float* x, int64_t n, TOut* y, cudaStream_t stream) {
  return LaunchElementwise(GeluForwardKernel<TOut>, n, stream, x, n, y);
}

template <typename TIn, typename TDy, typename TOut>
cudaError_t LaunchGeluBackward(const TIn* x, const TDy* dy, int64_t n, TOut* dx,
                               cudaStream_t stream) {
  return LaunchElementwise(GeluBackwardKernel<TIn, TDy, TOut>, n, stream, x, dy, n, dx);
}

template <typename TIn, typename TDy, typename TOut>
cudaError_t LaunchGeluBackwardAndColumnSums(const TIn* x, const TDy* dy, int64_t rows, int64_t cols,
                                            TOut* dx, float* sums, float* scratch,
                                            cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  return LaunchAccumulateColumnSumsOf(GeluGradientElement<TIn, TDy, TOut>{x, dy, cols, dx}, rows,
                                      cols, scratch, sums, stream);
}

template cudaError_t LaunchGeluForward<float>(const float*, int64_t, float*, cudaStream_t);
template cudaError_t LaunchGeluForward<BFloat16>(const float*, int64_t, BFloat16*, cudaStream_t);

// dy is f32, or bf16 (from a product under bf16 products) with a bf16 gradient.
#define USINE_GELU_BACKWARD(TIn, TDy, TOut)                                                       \
  template cudaError_t LaunchGeluBackward<TIn, TDy, TOut>(const TIn*, const TDy*, int64_t, TOut*, \
                                                          cudaStream_t);                          \
  template cudaError_t LaunchGeluBackwardAndColumnSums<TIn, TDy, TOut>(                           \
      const TIn*, const TDy*, int64_t, int64_t, TOut*, float*, float*, cudaStream_t);
USINE_GELU_BACKWARD(float, float, float)
USINE_GELU_BACKWARD(float, float, BFloat16)
USINE_GELU_BACKWARD(BFloat16, float, float)
USINE_GELU_BACKWARD(BFloat16, float, BFloat16)
USINE_GELU_BACKWARD(float, BFloat16, BFloat16)
USINE_GELU_BACKWARD(BFloat16, BFloat16, BFloat16)
#undef USINE_GELU_BACKWARD

}  // namespace usine::nn_internal::cuda
