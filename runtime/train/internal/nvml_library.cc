#include "runtime/train/internal/nvml_library.h"

#include <utility>

#include <dlfcn.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine::train_internal {
namespace {

// From nvml.h: nvmlReturn_t is an enum whose success is 0; these are the codes used here.
using NvmlReturn = int;
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr NvmlReturn kNvmlErrorNotSupported = 3;
constexpr unsigned kNvmlDeviceNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE

}  // namespace

struct NvmlFunctions {
  NvmlReturn (*init_v2)();
  NvmlReturn (*shutdown)();
  const char* (*error_string)(NvmlReturn);
  NvmlReturn (*device_get_handle_by_pci_bus_id_v2)(const char*, NvmlLibrary::Device*);
  NvmlReturn (*device_get_name)(NvmlLibrary::Device, char*, unsigned);
  NvmlReturn (*device_get_total_energy_consumption)(
      NvmlLibrary::Device,
      unsigned long long*);  // NOLINT(google-runtime-int)
  NvmlReturn (*device_get_power_usage)(NvmlLibrary::Device, unsigned*);
};

namespace {

template <typename F>
absl::Status Find(void* handle, const std::string& path, const char* name, F* function) {
  dlerror();
  *function = reinterpret_cast<F>(dlsym(handle, name));
  if (*function == nullptr) {
    const char* error = dlerror();
    return absl::UnavailableError(absl::StrCat(
        path, ": no function ", name, error != nullptr ? ": " : "", error != nullptr ? error : ""));
  }
  return absl::OkStatus();
}

absl::Status FindAll(void* handle, const std::string& path, NvmlFunctions* f) {
  RETURN_IF_ERROR(Find(handle, path, "nvmlInit_v2", &f->init_v2));
  RETURN_IF_ERROR(Find(handle, path, "nvmlShutdown", &f->shutdown));
  RETURN_IF_ERROR(Find(handle, path, "nvmlErrorString", &f->error_string));
  RETURN_IF_ERROR(Find(handle, path, "nvmlDeviceGetHandleByPciBusId_v2",
                       &f->device_get_handle_by_pci_bus_id_v2));
  RETURN_IF_ERROR(Find(handle, path, "nvmlDeviceGetName", &f->device_get_name));
  RETURN_IF_ERROR(Find(handle, path, "nvmlDeviceGetTotalEnergyConsumption",
                       &f->device_get_total_energy_consumption));
  return Find(handle, path, "nvmlDeviceGetPowerUsage", &f->device_get_power_usage);
}

absl::Status NvmlStatus(const NvmlFunctions& f, NvmlReturn result, absl::string_view call) {
  if (result == kNvmlSuccess) return absl::OkStatus();
  const std::string message =
      absl::StrCat(call, ": ", f.error_string(result), " (NVML error ", result, ")");
  if (result == kNvmlErrorNotSupported) return absl::UnimplementedError(message);
  return absl::UnavailableError(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    return absl::UnavailableError(
        absl::StrCat("cannot load ", path, ": ", error != nullptr ? error : "unknown error"));
  }
  auto functions = std::make_unique<NvmlFunctions>();
  if (absl::Status s = FindAll(handle, path, functions.get()); !s.ok()) {
    dlclose(handle);
    return s;
  }
  if (absl::Status s = NvmlStatus(*functions, functions->init_v2(), "nvmlInit_v2"); !s.ok()) {
    dlclose(handle);
    return absl::UnavailableError(absl::StrCat(path, ": ", s.message()));
  }
  return std::unique_ptr<NvmlLibrary>(new NvmlLibrary(handle, std::move(functions)));
}

NvmlLibrary::NvmlLibrary(void* handle, std::unique_ptr<NvmlFunctions> functions)
    : handle_(handle), functions_(std::move(functions)) {}

NvmlLibrary::~NvmlLibrary() {
  functions_->shutdown();
  dlclose(handle_);
}

absl::StatusOr<NvmlLibrary::Device> NvmlLibrary::DeviceByPciBusId(const std::string& bus_id) const {
  Device device = nullptr;
  const NvmlReturn result = functions_->device_get_handle_by_pci_bus_id_v2(bus_id.c_str(), &device);
  if (absl::Status s = NvmlStatus(*functions_, result,
                                  absl::StrCat("nvmlDeviceGetHandleByPciBusId_v2(", bus_id, ")"));
      !s.ok()) {
    return s;
  }
  return device;
}

absl::StatusOr<std::string> NvmlLibrary::Name(Device device) const {
  char name[kNvmlDeviceNameBufferSize] = {};
  if (absl::Status s =
          NvmlStatus(*functions_, functions_->device_get_name(device, name, sizeof(name)),
                     "nvmlDeviceGetName");
      !s.ok()) {
    return s;
  }
  return std::string(name);
}

absl::StatusOr<uint64_t> NvmlLibrary::TotalEnergyMillijoules(Device device) const {
  unsigned long long millijoules = 0;  // NOLINT(google-runtime-int): NVML's type.
  if (absl::Status s = NvmlStatus(
          *functions_, functions_->device_get_total_energy_consumption(device, &millijoules),
          "nvmlDeviceGetTotalEnergyConsumption");
      !s.ok()) {
    return s;
  }
  return static_cast<uint64_t>(millijoules);
}

absl::StatusOr<double> NvmlLibrary::PowerWatts(Device device) const {
  unsigned milliwatts = 0;
  if (absl::Status s =
          NvmlStatus(*functions_, functions_->device_get_power_usage(device, &milliwatts),
                     "nvmlDeviceGetPowerUsage");
      !s.ok()) {
    return s;
  }
  return milliwatts * 1e-3;
}

}  // namespace usine::train_internal
