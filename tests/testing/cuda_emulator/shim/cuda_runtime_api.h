// The CUDA runtime API's types and calls, for CUDA sources compiled as host C++ under the CUDA
// emulator (../README.md), and for the library's own sources in an emulated build (emulated
// twins of the libraries, cmake/UsineCudaEmulation.cmake). It stands in for the toolkit's header
// of the same name, which is not on an emulated target's include path. Add to it what another
// emulated file needs.
//
// One device, 0, with an H100's compute capability and limits. Work runs when it is issued: a
// launch, a copy or a memset is complete when the call returns, whatever its stream, so events
// are complete once recorded and streams never wait. That is one valid order of what CUDA runs;
// the order CUDA gives the work of different streams is checked (../internal/stream_order.h):
// two calls on different streams that nothing orders, touching the same device bytes, one of
// them writing, are reported as a race. Device memory is the emulator's guarded host
// memory (DeviceMalloc): a copy or memset on device memory outside every allocation is refused
// (cudaErrorInvalidValue), as a kernel's access outside is caught (../README.md). Thread-safe;
// the last error is per host thread, as CUDA's.
//
//   if (cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ==
//       cudaSuccess) {
//     Kernel<<<grid, threads, bytes, stream>>>(args);  // kernel_launch.h
//   }
//   const cudaError_t err = cudaGetLastError();
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_

#include <cstddef>

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

// CUDA's values, so that a message shows the code CUDA would.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
};
typedef enum cudaError cudaError_t;
typedef struct CUstream_st* cudaStream_t;  // Null: the default stream.
typedef struct CUevent_st* cudaEvent_t;
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02

// The fields that the library reads; an emulated device has an H100's compute capability and
// streaming multiprocessors.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlockOptin;
  int major;
  int minor;
  int multiProcessorCount;
};

const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetPCIBusId(char* bus_id, int length, int device);
cudaError_t cudaDeviceSynchronize();

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device,
                                size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
// The host's time between the two records (work runs when issued).
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace usine::testing::cuda_emulator {
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes).
cudaError_t SetMaxDynamicSharedBytes(const void* kernel, int bytes);
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

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_RUNTIME_API_H_
