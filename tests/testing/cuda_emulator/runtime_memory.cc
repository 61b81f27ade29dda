// The CUDA runtime API's memory calls (shim/cuda_runtime_api.h): device memory is the emulator's
// guarded DeviceMalloc; pinned host memory is page-aligned heap memory; copies and memsets run
// when issued. A copy or memset that names device memory must stay within one allocation.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/internal/api_counts.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/launch_limits.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr size_t kHostAlignment = 4096;

std::mutex host_mu;
// Pinned host allocations: start -> bytes.
std::map<const void*, size_t>& HostAllocations() {
  static std::map<const void*, size_t> allocations;
  return allocations;
}

// Whether [p, p + bytes) lies in one pinned host allocation.
bool InPinnedHostAllocation(const void* p, size_t bytes) {
  const auto p_address = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(host_mu);
  auto it = HostAllocations().upper_bound(p);
  if (it == HostAllocations().begin()) return false;
  --it;
  const auto start = reinterpret_cast<uintptr_t>(it->first);
  const uintptr_t offset = p_address - start;
  return offset < it->second && bytes <= it->second - offset;
}

// Whether [p, p + bytes) is device memory as `kind` says (cudaMemcpyDefault: either, as with
// unified addressing), and never straddles an allocation's end.
bool ValidSide(const void* p, size_t bytes, bool device, bool any, const char* call,
               const char* side) {
  const bool starts_in_device = InDeviceAllocation(p, 1);
  if (starts_in_device && !InDeviceAllocation(p, bytes)) {
    Note("%s: the %s range [%p, +%zu) runs past the end of its device allocation", call, side, p,
         bytes);
    return false;
  }
  if (!any && starts_in_device != device) {
    Note("%s: the %s pointer %p is %s memory, not %s memory as the copy's kind says", call, side, p,
         starts_in_device ? "device" : "host", device ? "device" : "host");
    return false;
  }
  return true;
}

}  // namespace
}  // namespace usine::testing::cuda_emulator_internal

using usine::testing::cuda_emulator_internal::ApiCall;
using usine::testing::cuda_emulator_internal::Count;
using usine::testing::cuda_emulator_internal::DeviceAccess;
using usine::testing::cuda_emulator_internal::HostWaitsForDevice;
using usine::testing::cuda_emulator_internal::HostWaitsForStream;
using usine::testing::cuda_emulator_internal::InDeviceAllocation;
using usine::testing::cuda_emulator_internal::InPinnedHostAllocation;
using usine::testing::cuda_emulator_internal::IssueOnStream;
using usine::testing::cuda_emulator_internal::Note;
using usine::testing::cuda_emulator_internal::SetLastError;
using usine::testing::cuda_emulator_internal::ValidSide;

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (ptr == nullptr) return SetLastError(cudaErrorInvalidValue);
  *ptr = usine::testing::cuda_emulator::DeviceMalloc(bytes, "cudaMalloc");
  if (*ptr == nullptr) return SetLastError(cudaErrorMemoryAllocation);
  Count(ApiCall::kDeviceAllocation);
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  HostWaitsForDevice();  // As CUDA's does, before it frees.
  if (!usine::testing::cuda_emulator_internal::FreeDeviceAllocation(ptr)) {
    Note("cudaFree(%p): not the start of a device allocation", ptr);
    return SetLastError(cudaErrorInvalidValue);
  }
  Count(ApiCall::kDeviceFree);
  Count(ApiCall::kHostWait);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags) {
  if (ptr == nullptr || (flags & ~0xFu) != 0) return SetLastError(cudaErrorInvalidValue);
  const size_t rounded =
      (std::max<size_t>(bytes, 1) + usine::testing::cuda_emulator_internal::kHostAlignment - 1) /
      usine::testing::cuda_emulator_internal::kHostAlignment *
      usine::testing::cuda_emulator_internal::kHostAlignment;
  *ptr = std::aligned_alloc(usine::testing::cuda_emulator_internal::kHostAlignment, rounded);
  if (*ptr == nullptr) return SetLastError(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(usine::testing::cuda_emulator_internal::host_mu);
  usine::testing::cuda_emulator_internal::HostAllocations().emplace(*ptr, rounded);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(usine::testing::cuda_emulator_internal::host_mu);
    if (usine::testing::cuda_emulator_internal::HostAllocations().erase(ptr) == 0) {
      Note("cudaFreeHost(%p): not a pinned host allocation", ptr);
      return SetLastError(cudaErrorInvalidValue);
    }
  }
  std::free(ptr);
  Count(ApiCall::kHostWait);
  HostWaitsForDevice();
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return SetLastError(cudaErrorInvalidValue);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
    return SetLastError(cudaErrorInvalidMemcpyDirection);
  }
  const bool any = kind == cudaMemcpyDefault;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (!ValidSide(src, bytes, src_device, any, "cudaMemcpyAsync", "source") ||
      !ValidSide(dst, bytes, dst_device, any, "cudaMemcpyAsync", "destination")) {
    return SetLastError(cudaErrorInvalidValue);
  }
  IssueOnStream("cudaMemcpyAsync", stream,
                {{src, bytes, DeviceAccess::kRead, "source"},
                 {dst, bytes, DeviceAccess::kWrite, "destination"}});
  std::memmove(dst, src, bytes);
  // Into pageable host memory from the device, a GPU's call returns once it has copied; from
  // pageable host memory into the device, it may wait for the stream to stage the bytes.
  const bool from_device = InDeviceAllocation(src, 1), to_device = InDeviceAllocation(dst, 1);
  if (from_device && !to_device && !InPinnedHostAllocation(dst, bytes)) {
    Count(ApiCall::kHostWait);
    HostWaitsForStream(stream);
  } else if (!from_device && to_device && !InPinnedHostAllocation(src, bytes)) {
    Count(ApiCall::kPageableUpload);
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device,
                                size_t bytes, cudaStream_t stream) {
  if (dst_device != 0 || src_device != 0) return SetLastError(cudaErrorInvalidDevice);
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!InDeviceAllocation(ptr, bytes)) {
    Note("cudaMemsetAsync: [%p, +%zu) is not within one device allocation", ptr, bytes);
    return SetLastError(cudaErrorInvalidValue);
  }
  IssueOnStream("cudaMemsetAsync", stream, {{ptr, bytes, DeviceAccess::kWrite, "destination"}});
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
