// NVML, the NVIDIA Management Library, loaded at run time with dlopen, so that building
// needs neither its header nor its library and a machine without the NVIDIA driver simply
// has no GPU energy. The few types and functions used are declared in nvml_library.cc as
// nvml.h declares them (their ABI is stable: the _v2 names are NVML's versioned entry points).
//
//   ASSIGN_OR_RETURN(auto nvml, NvmlLibrary::Load("libnvidia-ml.so.1"));
//   ASSIGN_OR_RETURN(NvmlLibrary::Device gpu, nvml->DeviceByPciBusId("0000:3b:00.0"));
//   ASSIGN_OR_RETURN(uint64_t mj, nvml->TotalEnergyMillijoules(gpu));
//
// Thread-safety: NVML's functions are thread-safe, and so is this class once loaded.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_NVML_LIBRARY_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_NVML_LIBRARY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace usine::train_internal {

struct NvmlFunctions;  // The entry points, found with dlsym.

class NvmlLibrary {
 public:
  // NVML's opaque device handle (nvmlDevice_t).
  using Device = struct nvmlDevice_st*;

  // dlopen(`path`), finds the entry points and calls nvmlInit_v2. Unavailable, naming the
  // library and the reason (dlerror's message, the missing function, NVML's error), when
  // any of that fails.
  static absl::StatusOr<std::unique_ptr<NvmlLibrary>> Load(const std::string& path);
  ~NvmlLibrary();  // nvmlShutdown (NVML counts its initialisations), then dlclose.
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  // The GPU at a PCI address "domain:bus:device.function" (as cudaDeviceGetPCIBusId gives it).
  absl::StatusOr<Device> DeviceByPciBusId(const std::string& bus_id) const;
  absl::StatusOr<std::string> Name(Device device) const;
  // The energy the GPU has used since the driver was loaded, in millijoules (Volta and
  // later); Unimplemented where the GPU does not support it.
  absl::StatusOr<uint64_t> TotalEnergyMillijoules(Device device) const;
  // The GPU's power draw now (averaged by the driver over a short window), in watts.
  absl::StatusOr<double> PowerWatts(Device device) const;

 private:
  NvmlLibrary(void* handle, std::unique_ptr<NvmlFunctions> functions);

  void* handle_;
  std::unique_ptr<NvmlFunctions> functions_;
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_NVML_LIBRARY_H_
