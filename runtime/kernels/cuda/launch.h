// Kernel launchers of the CUDA backend: the boundary between the host C++20 code that unpacks
// Tensors (backend.cc, matmul.cc) and the .cu files, which nvcc compiles as C++17 and which
// therefore see neither Abseil nor Tensor, only raw device pointers and element counts.
//
//   const cudaError_t err = LaunchAxpy(alpha, x_ptr, y_ptr, n, stream);
//   RETURN_IF_ERROR(USINE_CUDA_STATUS(err));
//
// Common contract:
// - Work is enqueued on `stream` (nullptr: the legacy default stream) of the current device;
//   every pointer is device memory of that device holding n contiguous elements.
// - The result is the enqueueing error (cudaGetLastError() after the launch), not an error of
//   the kernel itself, which surfaces at a later synchronisation. n == 0 enqueues nothing and
//   returns cudaSuccess, except for LaunchSum, which writes 0.
// - T, In and Out are float, usine::BFloat16 or usine::Float16 (runtime/core/float16.h); the
//   templates are instantiated for exactly these in the .cu files. Arithmetic is done in f32
//   and rounded once to the element type, bit for bit like the cpu path (kernels/cpu/).
// - int64_t indices throughout: any n that fits in memory.
#ifndef USINE_RUNTIME_KERNELS_CUDA_LAUNCH_H_
#define USINE_RUNTIME_KERNELS_CUDA_LAUNCH_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::kernels_internal::cuda {

// Every element <- the low `element_size` bytes of `bits`. REQUIRES: element_size is 1, 2, 4
// or 8 (otherwise cudaErrorInvalidValue) and `data` is aligned to it.
cudaError_t LaunchFill(void* data, int64_t n, int element_size, uint64_t bits, cudaStream_t stream);

// out[i] <- in[i] converted (round to nearest even). In place only when In == Out.
template <typename In, typename Out>
cudaError_t LaunchCast(const In* in, Out* out, int64_t n, cudaStream_t stream);

// x[i] <- alpha * x[i].
template <typename T>
cudaError_t LaunchScale(T* x, int64_t n, float alpha, cudaStream_t stream);

// Up to kMaxTensors tensors of one launch of LaunchScaleTensors or LaunchFillTensors: tensor i
// has n[i] elements at x[i]. Passed by value as a kernel argument (about 0.8 KB).
struct TensorGroup {
  static constexpr int kMaxTensors = 48;
  void* x[kMaxTensors] = {};
  int64_t n[kMaxTensors] = {};
  int count = 0;
};

// LaunchScale of every tensor of `tensors` (elements of type T), the same bits, in one launch.
template <typename T>
cudaError_t LaunchScaleTensors(const TensorGroup& tensors, float alpha, cudaStream_t stream);

// LaunchFill of every tensor of `tensors` (elements of `element_size` bytes), in one launch.
cudaError_t LaunchFillTensors(const TensorGroup& tensors, int element_size, uint64_t bits,
                              cudaStream_t stream);

// y[i] <- alpha * x[i] + y[i], two roundings in f32 (no fused multiply-add), then one to T.
template <typename T>
cudaError_t LaunchAxpy(float alpha, const T* x, T* y, int64_t n, cudaStream_t stream);

// out[i] <- a[i] + b[i]. `out` may be `a` or `b`.
template <typename T>
cudaError_t LaunchAdd(const T* a, const T* b, T* out, int64_t n, cudaStream_t stream);

// The whole of a matmul whose inner dimension k is 0, which cuBLASLt cannot describe (a zero
// leading dimension is invalid): c[rows, cols] <- beta * c + bias on every row, where
// beta == 0 writes 0 whatever c held (NaN included), as BLAS does, and `bias` (cols
// elements) may be nullptr. Instantiated for T = float and BFloat16, the CUDA matmul outputs.
template <typename T>
cudaError_t LaunchScaleAndAddBias(T* c, int64_t rows, int64_t cols, float beta, const T* bias,
                                  cudaStream_t stream);

// Number of f32 partial sums that LaunchSum needs in `partials`: a function of n only (at
// least 1, at most 1024), so that the summation order, and so the result, is fixed by n.
int SumPartialCount(int64_t n);

// *out <- the sum of x[i] (of x[i]^2 with `squares`), then its square root with `square_root`;
// 0 for n == 0. Deterministic: a fixed grid of SumPartialCount(n) blocks, f32 accumulation in
// a fixed order, a fixed tree in each block, then one block over the partials. No atomics.
// REQUIRES: `partials` holds SumPartialCount(n) floats, unused by other work until this
// finishes (stream order); `out` is one float.
template <typename T>
cudaError_t LaunchSum(const T* x, int64_t n, bool squares, bool square_root, float* partials,
                      float* out, cudaStream_t stream);

// Up to kMaxTensors tensors of one launch of LaunchL2Norms: tensor i has n[i] elements at x[i]
// and its SumPartialCount(n[i]) partials at partials + partial_offset[i]. Passed by value as a
// kernel argument (about 1.2 KB).
struct SumTensors {
  static constexpr int kMaxTensors = 48;
  const void* x[kMaxTensors] = {};
  int64_t n[kMaxTensors] = {};
  int64_t partial_offset[kMaxTensors] = {};
  int count = 0;
};

// out[i] <- the L2 norm of tensor i, the same bits as LaunchSum(x[i], n[i], true, true, ...)
// gives, for every tensor of `tensors` (elements of type T), in two launches whatever their
// count: a model's gradient norms without two launches a parameter. REQUIRES: `partials` holds
// the partials that `tensors` place, unused by other work until this finishes (stream order);
// `out` holds tensors.count floats.
template <typename T>
cudaError_t LaunchL2Norms(const SumTensors& tensors, float* partials, float* out,
                          cudaStream_t stream);

// out[i] <- element offset + i of the Philox stream `seed` (internal/philox.h), uniform on
// [low, high) or normal(mean, stddev); drawn in f32, then rounded to T. Identical bits to
// cpu::RandomUniform / cpu::RandomNormal for the same arguments.
template <typename T>
cudaError_t LaunchRandomUniform(T* out, int64_t n, uint64_t seed, uint64_t offset, float low,
                                float high, cudaStream_t stream);
template <typename T>
cudaError_t LaunchRandomNormal(T* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                               float stddev, cudaStream_t stream);

}  // namespace usine::kernels_internal::cuda

#endif  // USINE_RUNTIME_KERNELS_CUDA_LAUNCH_H_
