// The energy a training job uses: every GPU's, from NVML's total-energy counter (NVML loaded
// at run time with dlopen; where a GPU has no counter, its power draw sampled and
// integrated), and every machine's CPU packages, from RAPL (/sys/class/powercap) where the
// kernel lets us read it. A source that cannot be read is *unavailable* (std::nullopt, shown
// "n/a"), never 0 joules.
//
// Every GPU and every machine's CPU packages must be counted once, whatever the number of
// ranks per machine and GPU: AssignEnergySources decides which rank reads what, each rank's
// EnergyMeter reads its sources, and SumEnergyOverRanks adds the ranks' shares up.
//
//   ASSIGN_OR_RETURN(EnergyMeterOptions options, AssignEnergySources(world, device));
//   std::unique_ptr<EnergyMeter> meter = EnergyMeter::Start(options);
//   USINE_LOG(INFO) << "energy: " << meter->Describe();
//   ...                                                     // at each logged step, all ranks:
//   ASSIGN_OR_RETURN(EnergyReading now, SumEnergyOverRanks(world, meter->Read()));
//   EnergyReading step_energy = now.Since(previous);        // what the step used
//
// Definitions (docs/metrics.md): GPU energy is the board's (NVML); CPU energy is the
// packages' (cores, caches, memory controller; not DRAM, disks, network or fans).
#ifndef USINE_RUNTIME_TRAIN_ENERGY_H_
#define USINE_RUNTIME_TRAIN_ENERGY_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"

namespace usine {

namespace train_internal {
class GpuEnergy;
class RaplPackages;
}  // namespace train_internal

// The energy of the whole job (or an interval of it), by source; nullopt: unavailable.
struct EnergyReading {
  std::optional<double> gpu_joules = std::nullopt;
  std::optional<double> cpu_joules = std::nullopt;

  // GPU + CPU joules of the sources that are available; nullopt when neither is.
  std::optional<double> Total() const;
  // This reading less an earlier one, source by source (nullopt where either lacks it).
  EnergyReading Since(const EnergyReading& earlier) const;
};

// What one rank reads for one source.
struct EnergyShare {
  bool assigned = false;  // this rank reads the source (EnergyMeterOptions)
  std::optional<double> joules =
      std::nullopt;  // since the meter started; nullopt when assigned but unreadable
};

// One rank's shares, as EnergyMeter::Read gives them.
struct RankEnergy {
  EnergyShare gpu;
  EnergyShare cpu;
};

struct EnergyMeterOptions {
  // The CUDA device whose energy this rank reads; nullopt: none. Default: none.
  std::optional<Device> gpu = std::nullopt;
  // With `gpu`: its PCI address ("0000:3b:00.0") to find in NVML, instead of the one CUDA
  // gives (then `gpu` only names it in Describe, and no CUDA is needed). Default: empty,
  // CUDA's.
  std::string gpu_pci_bus_id = {};
  // Whether this rank reads its machine's CPU packages. Default: false.
  bool cpu_packages = false;
  // The powercap directory with the RAPL domains. Default: /sys/class/powercap.
  std::string powercap_root = "/sys/class/powercap";
  // The NVML library to dlopen. Default: libnvidia-ml.so.1 (the driver's).
  std::string nvml_library = "libnvidia-ml.so.1";
  // How often a background thread reads the sources that need it: RAPL counters (which
  // wrap every few minutes at full power) and a GPU without an energy counter (whose power
  // is integrated between samples). Default: 100 ms.
  absl::Duration sample_interval = absl::Milliseconds(100);
};

// Decides which sources this rank reads so that the job counts each once: a CUDA `device`
// is read by the lowest rank bound to it (machines told apart by host name, GPUs by PCI
// address), and each machine's CPU packages by its lowest rank. A collective over `world`
// (every rank of the job, in the same order; a host communicator: mpi/ or local/); the
// returned options have the default paths and interval.
[[nodiscard]] absl::StatusOr<EnergyMeterOptions> AssignEnergySources(Communicator& world,
                                                                     Device device);

// Reads the sources it is given, from the moment it starts.
// Thread-safety: Read and Describe may be called from any thread.
class EnergyMeter {
 public:
  // Starts reading: a source that cannot be read (no NVML, no RAPL, no permission) is
  // unavailable and Describe says why; that is not an error.
  static std::unique_ptr<EnergyMeter> Start(const EnergyMeterOptions& options);
  ~EnergyMeter();  // Stops the sampling thread.
  EnergyMeter(const EnergyMeter&) = delete;
  EnergyMeter& operator=(const EnergyMeter&) = delete;

  // This rank's joules since Start, per source, read now. A source whose read fails stays
  // unavailable from then on (a gap would undercount).
  RankEnergy Read();

  // One line: "GPU cuda:0 (NVIDIA H100 80GB HBM3, 0000:3b:00.0): NVML energy counter; CPU 2
  // RAPL package(s)", with "not read by this rank" or "n/a (<reason>)" where that is so.
  std::string Describe() const;

 private:
  explicit EnergyMeter(const EnergyMeterOptions& options);
  // Reads RAPL and a power-sampled GPU; a GPU's energy counter too when `counters_too`
  // (the counter needs no sampling: Read reads it).
  void PollLocked(bool counters_too) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SampleLoop();

  const bool gpu_assigned_;
  const bool cpu_assigned_;
  const absl::Duration sample_interval_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees the former's locking (Debian's
  // Abseil is not instrumented).
  mutable std::mutex mu_;
  std::condition_variable stop_requested_;
  std::unique_ptr<train_internal::GpuEnergy> gpu_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<train_internal::RaplPackages> cpu_ ABSL_GUARDED_BY(mu_);
  std::optional<double> gpu_joules_ ABSL_GUARDED_BY(mu_);
  std::optional<double> cpu_joules_ ABSL_GUARDED_BY(mu_);
  std::string gpu_description_ ABSL_GUARDED_BY(mu_);
  std::string cpu_description_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sampler_;
};

// The job's energy: every rank's shares added up. A source is available when at least one
// rank is assigned to it and every assigned rank could read it, so that a job with one
// unreadable machine reports "n/a" rather than too little. A collective over `comm` (every
// rank, in the same order; any backend); joules are summed exactly, in millijoules.
[[nodiscard]] absl::StatusOr<EnergyReading> SumEnergyOverRanks(Communicator& comm,
                                                               const RankEnergy& mine);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_ENERGY_H_
