// A stand-in for NVML (libnvidia-ml.so.1) with one GPU, for testing usine's NVML path on a
// machine without the NVIDIA driver. The library fake_nvml exports NVML's entry points as
// nvml_library.cc uses them, and FakeNvml, which a test finds with dlsym in its own dlopen of
// the library (the same copy NvmlLibrary loads) to set what NVML returns and count its calls:
//
//   void* fake = dlopen(USINE_FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
//   FakeNvmlState* nvml = reinterpret_cast<FakeNvmlState* (*)()>(dlsym(fake, "FakeNvml"))();
//   nvml->power_result = kFakeNvmlErrorGpuIsLost;  // nvmlDeviceGetPowerUsage fails from now on
//
// Not thread-safe: set the state while nothing calls the library.
#ifndef USINE_TESTS_RUNTIME_TRAIN_FAKE_NVML_H_
#define USINE_TESTS_RUNTIME_TRAIN_FAKE_NVML_H_

// nvmlReturn_t's codes used here, and nvmlErrorString's text for them.
constexpr int kFakeNvmlSuccess = 0;
constexpr int kFakeNvmlErrorNotSupported = 3;     // "Not Supported"
constexpr int kFakeNvmlErrorNotFound = 6;         // "Not Found"
constexpr int kFakeNvmlErrorDriverNotLoaded = 9;  // "Driver Not Loaded"
constexpr int kFakeNvmlErrorGpuIsLost = 15;       // "GPU is lost"

struct FakeNvmlState {
  int init_result = kFakeNvmlSuccess;  // nvmlInit_v2's return
  int inits = 0;                       // successful nvmlInit_v2 calls
  int shutdowns = 0;                   // nvmlShutdown calls
  // The one GPU: the address nvmlDeviceGetHandleByPciBusId_v2 finds (any other is Not Found)
  // and the name nvmlDeviceGetName gives.
  const char* bus_id = "0000:3b:00.0";
  const char* name = "Fake GPU 80GB";
  // nvmlDeviceGetTotalEnergyConsumption's return, the counter it reads (mJ) and the amount
  // the counter then advances by.
  int energy_result = kFakeNvmlSuccess;
  unsigned long long energy_millijoules = 0;       // NOLINT(google-runtime-int): NVML's type.
  unsigned long long energy_step_millijoules = 0;  // NOLINT(google-runtime-int)
  // nvmlDeviceGetPowerUsage's return and the power it reads (mW).
  int power_result = kFakeNvmlSuccess;
  unsigned power_milliwatts = 0;
};

// The library's state, which lives as long as the library is loaded. Reset with
// `*FakeNvml() = FakeNvmlState{}`.
extern "C" FakeNvmlState* FakeNvml();

#endif  // USINE_TESTS_RUNTIME_TRAIN_FAKE_NVML_H_
