#include "runtime/core/device.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "runtime/core/status_macros.h"

#if USINE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "runtime/core/cuda_status.h"
#endif

namespace usine {
namespace {

struct Discovery {
  int count = 0;
  std::string reason;
};

Discovery Discover() {
#if USINE_WITH_CUDA
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  cudaGetLastError();  // A failed query must not leave an error for the next CUDA call.
  switch (err) {
    case cudaSuccess:
      return count > 0 ? Discovery{count, ""} : Discovery{0, "no CUDA device"};
    case cudaErrorNoDevice:
      return {0, "no CUDA device"};
    case cudaErrorInsufficientDriver:
      return {0, "no CUDA driver, or one older than the CUDA runtime"};
    default:
      return {0, absl::StrCat("CUDA unavailable: ", cudaGetErrorString(err))};
  }
#else
  return {0, "built without CUDA"};
#endif
}

const Discovery& CachedDiscovery() {
  static const Discovery* discovery = new Discovery(Discover());
  return *discovery;
}

}  // namespace

absl::StatusOr<Device> Device::Parse(absl::string_view text) {
  if (text == "cpu") return Device::Cpu();
  if (text == "cuda") return Device::Cuda(0);
  absl::string_view rest = text;
  int index = 0;
  if (absl::ConsumePrefix(&rest, "cuda:") && absl::SimpleAtoi(rest, &index) && index >= 0) {
    return Device::Cuda(index);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", text, "' (expected cpu, cuda or cuda:N)"));
}

std::string Device::ToString() const {
  return is_cpu() ? std::string("cpu") : absl::StrCat("cuda:", index_);
}

bool BuiltWithCuda() { return USINE_WITH_CUDA != 0; }

int CudaDeviceCount() { return CachedDiscovery().count; }

std::string CudaUnavailableReason() { return CachedDiscovery().reason; }

std::vector<CudaDeviceInfo> ListCudaDevices() {
  std::vector<CudaDeviceInfo> devices;
#if USINE_WITH_CUDA
  for (int i = 0; i < CudaDeviceCount(); ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    devices.push_back({i, prop.name, static_cast<int64_t>(prop.totalGlobalMem), prop.major,
                       prop.minor, prop.multiProcessorCount});
  }
#endif
  return devices;
}

absl::Status CheckDeviceAvailable(Device device) {
  if (device.is_cpu()) return absl::OkStatus();
  const int count = CudaDeviceCount();
  if (device.index() < count) return absl::OkStatus();
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(device.ToString(), " is not available: ", CudaUnavailableReason()));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      device.ToString(), " is not available: this machine has ", count, " CUDA device(s)"));
}

absl::Status SetCurrentDevice(Device device) {
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
#if USINE_WITH_CUDA
  if (device.is_cuda()) RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaSetDevice(device.index())));
#endif
  return absl::OkStatus();
}

}  // namespace usine
