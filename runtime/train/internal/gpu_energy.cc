#include "runtime/train/internal/gpu_energy.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "runtime/core/status_macros.h"

#if USINE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "runtime/core/cuda_status.h"
#endif

namespace usine::train_internal {

absl::StatusOr<std::string> CudaPciBusId(Device device) {
  if (!device.is_cuda()) {
    return absl::InvalidArgumentError(absl::StrCat(device.ToString(), " is not a CUDA device"));
  }
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
#if USINE_WITH_CUDA
  char bus_id[32] = {};  // "0000:3b:00.0" and a terminator; CUDA asks for at least 13.
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device.index())));
  return absl::AsciiStrToLower(bus_id);
#else
  return absl::FailedPreconditionError("built without CUDA");  // CheckDeviceAvailable failed.
#endif
}

absl::StatusOr<std::unique_ptr<GpuEnergy>> GpuEnergy::Start(const std::string& nvml_library,
                                                            Device device) {
  ASSIGN_OR_RETURN(std::string bus_id, CudaPciBusId(device));
  return StartAtPciBusId(nvml_library, bus_id, device);
}

absl::StatusOr<std::unique_ptr<GpuEnergy>> GpuEnergy::StartAtPciBusId(
    const std::string& nvml_library, const std::string& bus_id, Device device) {
  ASSIGN_OR_RETURN(std::unique_ptr<NvmlLibrary> nvml, NvmlLibrary::Load(nvml_library));
  ASSIGN_OR_RETURN(NvmlLibrary::Device handle, nvml->DeviceByPciBusId(bus_id));
  absl::StatusOr<std::string> name = nvml->Name(handle);
  auto gpu = std::unique_ptr<GpuEnergy>(new GpuEnergy(std::move(nvml), handle));
  absl::StatusOr<uint64_t> counter = gpu->nvml_->TotalEnergyMillijoules(handle);
  gpu->start_ = std::chrono::steady_clock::now();
  if (counter.ok()) {
    gpu->counter_at_start_ = *counter;
  } else if (absl::IsUnimplemented(counter.status())) {
    ASSIGN_OR_RETURN(double watts, gpu->nvml_->PowerWatts(handle));
    gpu->integrator_.Add(absl::ZeroDuration(), watts);
  } else {
    return counter.status();
  }
  gpu->description_ =
      absl::StrCat(device.ToString(), " (", name.ok() ? *name : "unnamed", ", ", bus_id, "): NVML ",
                   gpu->samples_power() ? "power samples" : "energy counter");
  return gpu;
}

absl::StatusOr<double> GpuEnergy::Poll() {
  if (counter_at_start_.has_value()) {
    ASSIGN_OR_RETURN(uint64_t millijoules, nvml_->TotalEnergyMillijoules(device_));
    // The counter runs from the driver's start and never goes back while it is loaded.
    return static_cast<double>(millijoules - *counter_at_start_) * 1e-3;
  }
  ASSIGN_OR_RETURN(double watts, nvml_->PowerWatts(device_));
  integrator_.Add(absl::FromChrono(std::chrono::steady_clock::now() - start_), watts);
  return integrator_.joules();
}

}  // namespace usine::train_internal
