// Where a tensor lives: the host ("cpu") or one CUDA device ("cuda:N"), and discovery of
// the CUDA devices of this machine.
//
//   ASSIGN_OR_RETURN(Device d, Device::Parse("cuda:1"));
//   if (CudaDeviceCount() == 0) { ... run on Device::Cpu() ... }
//
// Discovery never fails: a build without CUDA, a machine without a driver, or a driver
// without devices all report zero devices (CudaUnavailableReason() says which).
// All functions are safe to call from any thread.
#ifndef USINE_RUNTIME_CORE_DEVICE_H_
#define USINE_RUNTIME_CORE_DEVICE_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace usine {

enum class DeviceType : uint8_t { kCpu, kCuda };

class Device {
 public:
  static constexpr Device Cpu() { return Device(DeviceType::kCpu, 0); }
  static constexpr Device Cuda(int index) { return Device(DeviceType::kCuda, index); }
  // Parses "cpu", "cuda" (meaning cuda:0) or "cuda:N".
  static absl::StatusOr<Device> Parse(absl::string_view text);

  constexpr DeviceType type() const { return type_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return type_ == DeviceType::kCpu; }
  constexpr bool is_cuda() const { return type_ == DeviceType::kCuda; }
  std::string ToString() const;  // "cpu" or "cuda:N".

  friend constexpr bool operator==(Device a, Device b) {
    return a.type_ == b.type_ && a.index_ == b.index_;
  }
  friend constexpr bool operator!=(Device a, Device b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, Device d) { return os << d.ToString(); }

 private:
  constexpr Device(DeviceType type, int index) : type_(type), index_(index) {}
  DeviceType type_;
  int index_;
};

// True when this build contains the CUDA path (USINE_WITH_CUDA).
bool BuiltWithCuda();

// Number of usable CUDA devices; 0 without CUDA support, driver or device.
int CudaDeviceCount();

// Why CudaDeviceCount() is 0 ("built without CUDA", "no CUDA driver", ...), or "" if it is not.
std::string CudaUnavailableReason();

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int64_t total_memory_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  int multiprocessor_count = 0;
};

// One entry per device that CudaDeviceCount() counts.
std::vector<CudaDeviceInfo> ListCudaDevices();

// OK for the cpu and for an existing CUDA device; otherwise an error naming the device.
[[nodiscard]] absl::Status CheckDeviceAvailable(Device device);

// Makes `device` current for the calling thread's CUDA calls. No-op for the cpu.
[[nodiscard]] absl::Status SetCurrentDevice(Device device);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_DEVICE_H_
