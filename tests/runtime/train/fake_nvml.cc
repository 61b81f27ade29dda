// fake_nvml.h's library: NVML's entry points, with NVML's C ABI and nvml.h's signatures,
// answering from FakeNvml's state.
#include "tests/runtime/train/fake_nvml.h"

#include <cstdio>
#include <cstring>

// NVML's device handle is an opaque pointer; the fake's one GPU is this object's address, so
// that a call with any other handle is found out.
struct nvmlDevice_st {
  int unused;
};

namespace {

constexpr int kNvmlErrorInvalidArgument = 2;

FakeNvmlState state;
nvmlDevice_st the_gpu;

}  // namespace

extern "C" {

FakeNvmlState* FakeNvml() { return &state; }

int nvmlInit_v2() {
  if (state.init_result == kFakeNvmlSuccess) ++state.inits;
  return state.init_result;
}

int nvmlShutdown() {
  ++state.shutdowns;
  return kFakeNvmlSuccess;
}

const char* nvmlErrorString(int result) {
  switch (result) {
    case kFakeNvmlSuccess:
      return "Success";
    case kNvmlErrorInvalidArgument:
      return "Invalid Argument";
    case kFakeNvmlErrorNotSupported:
      return "Not Supported";
    case kFakeNvmlErrorNotFound:
      return "Not Found";
    case kFakeNvmlErrorDriverNotLoaded:
      return "Driver Not Loaded";
    case kFakeNvmlErrorGpuIsLost:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

int nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, nvmlDevice_st** device) {
  if (std::strcmp(bus_id, state.bus_id) != 0) return kFakeNvmlErrorNotFound;
  *device = &the_gpu;
  return kFakeNvmlSuccess;
}

int nvmlDeviceGetName(nvmlDevice_st* device, char* name, unsigned length) {
  if (device != &the_gpu || length == 0) return kNvmlErrorInvalidArgument;
  std::snprintf(name, length, "%s", state.name);
  return kFakeNvmlSuccess;
}

int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_st* device,
                                        unsigned long long* millijoules) {  // NOLINT
  if (device != &the_gpu) return kNvmlErrorInvalidArgument;
  if (state.energy_result != kFakeNvmlSuccess) return state.energy_result;
  *millijoules = state.energy_millijoules;
  state.energy_millijoules += state.energy_step_millijoules;
  return kFakeNvmlSuccess;
}

int nvmlDeviceGetPowerUsage(nvmlDevice_st* device, unsigned* milliwatts) {
  if (device != &the_gpu) return kNvmlErrorInvalidArgument;
  if (state.power_result != kFakeNvmlSuccess) return state.power_result;
  *milliwatts = state.power_milliwatts;
  return kFakeNvmlSuccess;
}

}  // extern "C"
