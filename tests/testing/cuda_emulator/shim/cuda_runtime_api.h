// The CUDA runtime API's types and the calls that the emulated kernel files make, for CUDA
// sources compiled as host C++ under the CUDA emulator (../README.md). It stands in for the
// toolkit's header of the same name, which is not on an emulated target's include path. Add to
// it what another emulated file needs.
//
//   if (cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ==
//       cudaSuccess) {
//     Kernel<<<grid, threads, bytes, stream>>>(args);  // kernel_launch.h
//   }
//   const cudaError_t err = cudaGetLastError();
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_

// The vector types carry their CUDA alignment, so that UndefinedBehaviorSanitizer checks the
// kernels' wide loads and stores for it.
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned int x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }

// CUDA's values, so that a test's message shows the code CUDA would.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
};
typedef enum cudaError cudaError_t;
typedef struct CUstream_st* cudaStream_t;  // Launches run synchronously: streams are ignored.
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

namespace usine::testing::cuda_emulator {
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes).
cudaError_t SetMaxDynamicSharedBytes(const void* kernel, int bytes);
// cudaGetLastError: the error of the latest launch that failed since the last call, then
// cudaSuccess.
cudaError_t TakeLastError();
}  // namespace usine::testing::cuda_emulator

// Beyond 48 KB of dynamic shared memory, a launch needs the kernel's limit raised first (up to
// 227 KB, an H100's); other attributes are not emulated.
template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  static_assert(sizeof(Kernel*) == sizeof(void*));
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  return ::usine::testing::cuda_emulator::SetMaxDynamicSharedBytes(
      reinterpret_cast<const void*>(kernel), value);
}

inline cudaError_t cudaGetLastError() { return ::usine::testing::cuda_emulator::TakeLastError(); }

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_
