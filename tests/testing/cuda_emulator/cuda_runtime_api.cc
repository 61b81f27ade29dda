// The CUDA runtime API's errors, launch attributes and device queries (shim/cuda_runtime_api.h,
// internal/launch_limits.h): each kernel's dynamic shared memory limit, the last error (per host
// thread, as CUDA's) and the one emulated device.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/internal/api_counts.h"
#include "tests/testing/cuda_emulator/internal/launch_limits.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr int kDefaultSharedLimit = 48 << 10;
constexpr int kMaxOptInSharedLimit = 227 << 10;  // An H100's; an A100 allows 163 KB.

std::mutex limits_mu;
std::map<const void*, int>& RaisedLimits() {
  static std::map<const void*, int> limits;
  return limits;
}

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t CheckDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

}  // namespace

size_t DynamicSharedLimit(const void* kernel) {
  std::lock_guard<std::mutex> lock(limits_mu);
  const auto it = RaisedLimits().find(kernel);
  return std::max(kDefaultSharedLimit, it == RaisedLimits().end() ? 0 : it->second);
}

cudaError_t SetLastError(cudaError_t error) {
  if (error != cudaSuccess) last_error = error;
  return error;
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

cudaError_t SetMaxDynamicSharedBytes(const void* kernel, int bytes) {
  if (bytes < 0 || bytes > cuda_emulator_internal::kMaxOptInSharedLimit) {
    return cuda_emulator_internal::SetLastError(cudaErrorInvalidValue);
  }
  std::lock_guard<std::mutex> lock(cuda_emulator_internal::limits_mu);
  cuda_emulator_internal::RaisedLimits()[kernel] = bytes;
  return cudaSuccess;
}

}  // namespace usine::testing::cuda_emulator

using usine::testing::cuda_emulator_internal::ApiCall;
using usine::testing::cuda_emulator_internal::CheckDevice;
using usine::testing::cuda_emulator_internal::Count;
using usine::testing::cuda_emulator_internal::SetLastError;

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
      return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver:
      return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
      return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = usine::testing::cuda_emulator_internal::last_error;
  usine::testing::cuda_emulator_internal::last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return usine::testing::cuda_emulator_internal::last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return SetLastError(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

// The emulator has one device and one host thread's notion of the current one is always it.
cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return SetLastError(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return SetLastError(CheckDevice(device)); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return SetLastError(cudaErrorInvalidValue);
  if (CheckDevice(device) != cudaSuccess) return SetLastError(cudaErrorInvalidDevice);
  *prop = {};
  std::snprintf(prop->name, sizeof(prop->name), "CUDA emulator (sm_90)");
  prop->totalGlobalMem = size_t{80} << 30;
  prop->sharedMemPerBlockOptin = usine::testing::cuda_emulator_internal::kMaxOptInSharedLimit;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetPCIBusId(char* bus_id, int length, int device) {
  if (bus_id == nullptr || length <= 0) return SetLastError(cudaErrorInvalidValue);
  if (CheckDevice(device) != cudaSuccess) return SetLastError(cudaErrorInvalidDevice);
  std::snprintf(bus_id, static_cast<size_t>(length), "0000:00:00.0");
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {  // Work runs when issued: nothing to wait for.
  Count(ApiCall::kHostWait);
  usine::testing::cuda_emulator_internal::HostWaitsForDevice();
  return cudaSuccess;
}
