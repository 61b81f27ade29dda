// The CPU packages' energy from Linux's powercap RAPL interface (Intel, and AMD since Zen):
// every `<root>/intel-rapl:N` whose `name` reads "package-N" (not the core/uncore/dram
// sub-domains `intel-rapl:N:M`, nor `psys`, which would count the same joules twice), from
// its cumulative `energy_uj`, which wraps to 0 after `max_energy_range_uj`.
//
//   ASSIGN_OR_RETURN(RaplPackages cpu, RaplPackages::Open("/sys/class/powercap"));
//   ...
//   ASSIGN_OR_RETURN(double joules, cpu.Joules());   // all packages, since Open
//
// Unreadable is common (no powercap in a VM or container; energy_uj is root-only since Linux
// 5.10): Open fails with the file and the reason, and the caller reports the CPU as "n/a".
// Thread-compatible: one thread at a time.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_RAPL_PACKAGES_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_RAPL_PACKAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace usine::train_internal {

// How far a counter that runs over [0, max_range] and then restarts at 0 has advanced from
// `before` to `after`, assuming it wrapped at most once (after < before means it did). The
// kernel's range ends one hardware unit (about 61 uJ) short of the true wrap point, which
// this does not know: at most that much is lost per wrap.
uint64_t WrappingCounterDelta(uint64_t before, uint64_t after, uint64_t max_range);

class RaplPackages {
 public:
  // Finds the package domains under `root` (default /sys/class/powercap) and reads each
  // counter once. NotFound when there is none; otherwise the first read that fails, naming
  // the file (PermissionDenied for a root-only energy_uj).
  static absl::StatusOr<RaplPackages> Open(const std::string& root);

  // Joules used by all packages since Open. A failed read is returned (naming the file) and
  // leaves the total as it was.
  // REQUIRES: called at least once per wrap of each counter (about 2^32 hardware units:
  // 262 kJ, an hour at 70 W, minutes at full power); EnergyMeter calls it every sample.
  absl::StatusOr<double> Joules();

  int package_count() const { return static_cast<int>(packages_.size()); }

 private:
  struct Package {
    std::string energy_path;  // <domain>/energy_uj
    uint64_t max_range = 0;   // <domain>/max_energy_range_uj
    uint64_t last = 0;        // the counter at the previous read
  };
  explicit RaplPackages(std::vector<Package> packages) : packages_(std::move(packages)) {}

  std::vector<Package> packages_;
  uint64_t total_microjoules_ = 0;
};

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_RAPL_PACKAGES_H_
