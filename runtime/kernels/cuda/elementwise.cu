// Elementwise CUDA kernels behind launch.h: grid-stride loops with int64 indices. bf16/f16
// are converted with float16.h's functions, the same code as the cpu path, so that every
// value (NaN payloads included) rounds identically; f32 arithmetic uses explicitly rounded
// intrinsics so that nvcc cannot fuse a multiply and an add the cpu rounds separately.
#include <algorithm>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "runtime/core/float16.h"
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/tensor_blocks.h"
#include "runtime/kernels/internal/float_convert.h"

namespace usine::kernels_internal::cuda {
namespace {

constexpr int kThreads = 256;
// Beyond a few waves on the largest current GPUs (H100: 132 SMs x 8 resident blocks of 256
// threads) more blocks add no parallelism; the grid-stride loops cover any n.
constexpr int64_t kMaxBlocks = 8192;

__device__ int64_t FirstIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ int64_t GridStride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

template <typename U>
__global__ void FillKernel(U* out, int64_t n, U value) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) out[i] = value;
}

template <typename In, typename Out>
__global__ void CastKernel(const In* in, Out* out, int64_t n) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) out[i] = FromFloat<Out>(ToFloat(in[i]));
}

template <typename T>
__global__ void ScaleKernel(T* x, int64_t n, float alpha) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    x[i] = FromFloat<T>(__fmul_rn(alpha, ToFloat(x[i])));
  }
}

// Block b of tensor i (tensor_blocks.h): op(x[j]) for the elements j of tensor i (of type T) from
// b * blockDim.x on, with a stride of its blocks' width.
template <typename T, typename Op>
__global__ void ForEachElementOfGroupKernel(TensorGroup tensors, TensorBlocks blocks, Op op) {
  const int t = blocks.TensorOf(static_cast<int>(blockIdx.x));
  T* x = static_cast<T*>(tensors.x[t]);
  const int64_t n = tensors.n[t];
  const int64_t stride = static_cast<int64_t>(blocks.Count(t)) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x - blocks.first[t]) * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    op(x[i]);
  }
}

template <typename U>
struct SetBits {
  U bits;
  __device__ void operator()(U& x) const { x = bits; }
};

template <typename T>
struct ScaleBy {
  float alpha;
  __device__ void operator()(T& x) const { x = FromFloat<T>(__fmul_rn(alpha, ToFloat(x))); }
};

template <typename T>
__global__ void AxpyKernel(float alpha, const T* x, T* y, int64_t n) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    y[i] = FromFloat<T>(__fadd_rn(__fmul_rn(alpha, ToFloat(x[i])), ToFloat(y[i])));
  }
}

template <typename T>
__global__ void AddKernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    out[i] = FromFloat<T>(__fadd_rn(ToFloat(a[i]), ToFloat(b[i])));
  }
}

template <typename T>
__global__ void ScaleAndAddBiasKernel(T* c, int64_t n, int64_t cols, float beta, const T* bias) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    float v = beta == 0.0f ? 0.0f : __fmul_rn(beta, ToFloat(c[i]));
    if (bias != nullptr) v = __fadd_rn(v, ToFloat(bias[i % cols]));
    c[i] = FromFloat<T>(v);
  }
}

// Launches `kernel` over n elements. Zero blocks is an invalid configuration, so n == 0
// launches nothing.
template <typename... Params, typename... Args>
cudaError_t Launch(void (*kernel)(Params...), int64_t n, cudaStream_t stream, Args... args) {
  if (n <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks));
  kernel<<<blocks, kThreads, 0, stream>>>(args...);
  return cudaGetLastError();
}

// The blocks of a group's launch (at most 1024 a tensor) and their count, 0 for none.
int GroupBlocks(const TensorGroup& tensors, TensorBlocks& blocks) {
  static_assert(TensorGroup::kMaxTensors <= TensorBlocks::kMaxTensors);
  constexpr int64_t kMaxBlocksPerTensor = 1024;
  return AssignTensorBlocks(tensors.n, tensors.count, kThreads, kMaxBlocksPerTensor, blocks);
}

}  // namespace

cudaError_t LaunchFill(void* data, int64_t n, int element_size, uint64_t bits,
                       cudaStream_t stream) {
  if (element_size != 1 && element_size != 2 && element_size != 4 && element_size != 8) {
    return cudaErrorInvalidValue;
  }
  if (n <= 0) return cudaSuccess;
  // Zero (the common Fill) and single bytes are a plain memset.
  if (bits == 0 || element_size == 1) {
    return cudaMemsetAsync(data, static_cast<int>(bits & 0xffu),
                           static_cast<size_t>(n) * static_cast<size_t>(element_size), stream);
  }
  switch (element_size) {
    case 2:
      return Launch(FillKernel<uint16_t>, n, stream, static_cast<uint16_t*>(data), n,
                    static_cast<uint16_t>(bits));
    case 4:
      return Launch(FillKernel<uint32_t>, n, stream, static_cast<uint32_t*>(data), n,
                    static_cast<uint32_t>(bits));
    default:
      return Launch(FillKernel<uint64_t>, n, stream, static_cast<uint64_t*>(data), n, bits);
  }
}

template <typename In, typename Out>
cudaError_t LaunchCast(const In* in, Out* out, int64_t n, cudaStream_t stream) {
  return Launch(CastKernel<In, Out>, n, stream, in, out, n);
}

template <typename T>
cudaError_t LaunchScale(T* x, int64_t n, float alpha, cudaStream_t stream) {
  return Launch(ScaleKernel<T>, n, stream, x, n, alpha);
}

template <typename T>
cudaError_t LaunchScaleTensors(const TensorGroup& tensors, float alpha, cudaStream_t stream) {
  TensorBlocks blocks;
  const int grid = GroupBlocks(tensors, blocks);
  if (grid == 0) return cudaSuccess;
  ForEachElementOfGroupKernel<T><<<grid, kThreads, 0, stream>>>(tensors, blocks, ScaleBy<T>{alpha});
  return cudaGetLastError();
}

cudaError_t LaunchFillTensors(const TensorGroup& tensors, int element_size, uint64_t bits,
                              cudaStream_t stream) {
  TensorBlocks blocks;
  const int grid = GroupBlocks(tensors, blocks);
  if (grid == 0) return cudaSuccess;
  switch (element_size) {
    case 1:
      ForEachElementOfGroupKernel<uint8_t><<<grid, kThreads, 0, stream>>>(
          tensors, blocks, SetBits<uint8_t>{static_cast<uint8_t>(bits)});
      break;
    case 2:
      ForEachElementOfGroupKernel<uint16_t><<<grid, kThreads, 0, stream>>>(
          tensors, blocks, SetBits<uint16_t>{static_cast<uint16_t>(bits)});
      break;
    case 4:
      ForEachElementOfGroupKernel<uint32_t><<<grid, kThreads, 0, stream>>>(
          tensors, blocks, SetBits<uint32_t>{static_cast<uint32_t>(bits)});
      break;
    case 8:
      ForEachElementOfGroupKernel<uint64_t>
          <<<grid, kThreads, 0, stream>>>(tensors, blocks, SetBits<uint64_t>{bits});
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchAxpy(float alpha, const T* x, T* y, int64_t n, cudaStream_t stream) {
  return Launch(AxpyKernel<T>, n, stream, alpha, x, y, n);
}

template <typename T>
cudaError_t LaunchAdd(const T* a, const T* b, T* out, int64_t n, cudaStream_t stream) {
  return Launch(AddKernel<T>, n, stream, a, b, out, n);
}

template <typename T>
cudaError_t LaunchScaleAndAddBias(T* c, int64_t rows, int64_t cols, float beta, const T* bias,
                                  cudaStream_t stream) {
  const int64_t n = rows * cols;
  return Launch(ScaleAndAddBiasKernel<T>, n, stream, c, n, cols, beta, bias);
}

#define USINE_INSTANTIATE_CAST(In)                                                            \
  template cudaError_t LaunchCast<In, float>(const In*, float*, int64_t, cudaStream_t);       \
  template cudaError_t LaunchCast<In, BFloat16>(const In*, BFloat16*, int64_t, cudaStream_t); \
  template cudaError_t LaunchCast<In, Float16>(const In*, Float16*, int64_t, cudaStream_t);

#define USINE_INSTANTIATE_ARITHMETIC(T)                                                \
  USINE_INSTANTIATE_CAST(T)                                                            \
  template cudaError_t LaunchScale<T>(T*, int64_t, float, cudaStream_t);               \
  template cudaError_t LaunchScaleTensors<T>(const TensorGroup&, float, cudaStream_t); \
  template cudaError_t LaunchAxpy<T>(float, const T*, T*, int64_t, cudaStream_t);      \
  template cudaError_t LaunchAdd<T>(const T*, const T*, T*, int64_t, cudaStream_t);

USINE_INSTANTIATE_ARITHMETIC(float)
USINE_INSTANTIATE_ARITHMETIC(BFloat16)
USINE_INSTANTIATE_ARITHMETIC(Float16)

#undef USINE_INSTANTIATE_ARITHMETIC
#undef USINE_INSTANTIATE_CAST

template cudaError_t LaunchScaleAndAddBias<float>(float*, int64_t, int64_t, float, const float*,
                                                  cudaStream_t);
template cudaError_t LaunchScaleAndAddBias<BFloat16>(BFloat16*, int64_t, int64_t, float,
                                                     const BFloat16*, cudaStream_t);

}  // namespace usine::kernels_internal::cuda
