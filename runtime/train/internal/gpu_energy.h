// One GPU's energy since Start, read through NVML (nvml_library.h): the GPU's total-energy
// counter (Volta and later), or, where NVML does not support it, the power draw sampled at
// every Poll and integrated (power_integrator.h), which needs frequent polls to be accurate.
//
//   ASSIGN_OR_RETURN(auto gpu, GpuEnergy::Start("libnvidia-ml.so.1", Device::Cuda(0)));
//   ...
//   ASSIGN_OR_RETURN(double joules, gpu->Poll());
//
// The NVML device is the CUDA device's by PCI address, so CUDA_VISIBLE_DEVICES and CUDA's
// device order do not matter. Thread-compatible: one thread at a time.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_GPU_ENERGY_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_GPU_ENERGY_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

#include "runtime/core/device.h"
#include "runtime/train/internal/nvml_library.h"
#include "runtime/train/internal/power_integrator.h"

namespace usine::train_internal {

// The PCI address of a CUDA device, "0000:3b:00.0" (cudaDeviceGetPCIBusId, lower case).
// FailedPrecondition without CUDA or for a device that does not exist.
absl::StatusOr<std::string> CudaPciBusId(Device device);

class GpuEnergy {
 public:
  // Loads NVML from `nvml_library` and finds `device` in it. Unavailable (NVML's or CUDA's
  // reason) when the energy cannot be read.
  static absl::StatusOr<std::unique_ptr<GpuEnergy>> Start(const std::string& nvml_library,
                                                          Device device);
  // As Start, for the GPU at PCI address `bus_id` ("0000:3b:00.0"), which `device` names
  // in the description only: no CUDA is needed (tests give a stand-in NVML library).
  static absl::StatusOr<std::unique_ptr<GpuEnergy>> StartAtPciBusId(const std::string& nvml_library,
                                                                    const std::string& bus_id,
                                                                    Device device);

  // Joules used since Start, read now.
  absl::StatusOr<double> Poll();

  // True when the energy comes from power samples, so that Poll should run often.
  bool samples_power() const { return !counter_at_start_.has_value(); }

  // "cuda:0 (NVIDIA H100 80GB HBM3, 0000:3b:00.0): NVML energy counter" (or "...: NVML power
  // samples").
  const std::string& description() const { return description_; }

 private:
  GpuEnergy(std::unique_ptr<NvmlLibrary> nvml, NvmlLibrary::Device device)
      : nvml_(std::move(nvml)), device_(device) {}

  std::unique_ptr<NvmlLibrary> nvml_;
  NvmlLibrary::Device device_;
  std::optional<uint64_t> counter_at_start_;  // millijoules; nullopt: power samples
  std::chrono::steady_clock::time_point start_;
  PowerIntegrator integrator_;
  std::string description_;
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_GPU_ENERGY_H_
