#include "runtime/train/energy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"
#include "runtime/train/internal/gpu_energy.h"
#include "runtime/train/internal/rapl_packages.h"

namespace usine {
namespace {

using train_internal::GpuEnergy;
using train_internal::RaplPackages;

std::optional<double> Difference(std::optional<double> later, std::optional<double> earlier) {
  if (!later.has_value() || !earlier.has_value()) return std::nullopt;
  return *later - *earlier;
}

absl::StatusOr<std::string> HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) {
    return absl::UnavailableError("gethostname failed");
  }
  return std::string(name);
}

// The source keys of this rank: "<host>/<PCI address>" for its GPU ("" for none), "<host>".
absl::StatusOr<std::string> SourceKeys(Device device) {
  ASSIGN_OR_RETURN(std::string host, HostName());
  std::string gpu;
  if (device.is_cuda()) {
    absl::StatusOr<std::string> bus_id = train_internal::CudaPciBusId(device);
    // Without an address the GPU cannot be read anyway; its rank is assigned and reports it.
    gpu = absl::StrCat(host, "/", bus_id.ok() ? *bus_id : device.ToString());
  }
  return absl::StrCat(gpu, "\n", host);
}

// The layout of the summed shares: per source, millijoules, readers, readers that failed.
enum Slot { kGpuMillijoules, kGpuReaders, kGpuMissing, kCpuMillijoules, kCpuReaders, kCpuMissing };
constexpr int kSlots = 6;

void PutShare(const EnergyShare& share, int64_t* millijoules, int64_t* readers, int64_t* missing) {
  if (!share.assigned) return;
  *readers = 1;
  if (share.joules.has_value()) {
    *millijoules = std::llround(*share.joules * 1e3);
  } else {
    *missing = 1;
  }
}

std::optional<double> TakeSum(int64_t millijoules, int64_t readers, int64_t missing) {
  if (readers == 0 || missing > 0) return std::nullopt;
  return static_cast<double>(millijoules) * 1e-3;
}

}  // namespace

std::optional<double> EnergyReading::Total() const {
  if (!gpu_joules.has_value() && !cpu_joules.has_value()) return std::nullopt;
  return gpu_joules.value_or(0) + cpu_joules.value_or(0);
}

EnergyReading EnergyReading::Since(const EnergyReading& earlier) const {
  return {Difference(gpu_joules, earlier.gpu_joules), Difference(cpu_joules, earlier.cpu_joules)};
}

absl::StatusOr<EnergyMeterOptions> AssignEnergySources(Communicator& world, Device device) {
  ASSIGN_OR_RETURN(std::string mine, SourceKeys(device));
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(world, mine));
  const std::vector<std::string> my_keys = absl::StrSplit(mine, '\n');
  EnergyMeterOptions options;
  options.cpu_packages = true;
  bool gpu_mine = !my_keys[0].empty();
  for (int rank = 0; rank < world.rank(); ++rank) {
    const std::vector<std::string> keys = absl::StrSplit(all[rank], '\n');
    if (keys.size() != 2) {
      return absl::InternalError(absl::StrCat("AssignEnergySources: rank ", rank,
                                              " sent a malformed key list '", all[rank], "'"));
    }
    if (gpu_mine && keys[0] == my_keys[0]) gpu_mine = false;
    if (keys[1] == my_keys[1]) options.cpu_packages = false;
  }
  if (gpu_mine) options.gpu = device;
  return options;
}

std::unique_ptr<EnergyMeter> EnergyMeter::Start(const EnergyMeterOptions& options) {
  return std::unique_ptr<EnergyMeter>(new EnergyMeter(options));
}

EnergyMeter::EnergyMeter(const EnergyMeterOptions& options)
    : gpu_assigned_(options.gpu.has_value()),
      cpu_assigned_(options.cpu_packages),
      sample_interval_(options.sample_interval) {
  std::lock_guard<std::mutex> lock(mu_);
  gpu_description_ = "not read by this rank";
  if (gpu_assigned_) {
    absl::StatusOr<std::unique_ptr<GpuEnergy>> gpu =
        options.gpu_pci_bus_id.empty()
            ? GpuEnergy::Start(options.nvml_library, *options.gpu)
            : GpuEnergy::StartAtPciBusId(options.nvml_library, options.gpu_pci_bus_id,
                                         *options.gpu);
    if (gpu.ok()) {
      gpu_ = std::move(*gpu);
      gpu_joules_ = 0.0;
      gpu_description_ = gpu_->description();
    } else {
      gpu_description_ =
          absl::StrCat(options.gpu->ToString(), " n/a (", gpu.status().message(), ")");
    }
  }
  cpu_description_ = "not read by this rank";
  if (cpu_assigned_) {
    absl::StatusOr<RaplPackages> cpu = RaplPackages::Open(options.powercap_root);
    if (cpu.ok()) {
      cpu_ = std::make_unique<RaplPackages>(std::move(*cpu));
      cpu_joules_ = 0.0;
      cpu_description_ = absl::StrCat(cpu_->package_count(), " RAPL package(s)");
    } else {
      cpu_description_ = absl::StrCat("n/a (", cpu.status().message(), ")");
    }
  }
  if (cpu_ != nullptr || (gpu_ != nullptr && gpu_->samples_power())) {
    sampler_ = std::thread([this] { SampleLoop(); });
  }
}

EnergyMeter::~EnergyMeter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void EnergyMeter::PollLocked(bool counters_too) {
  if (gpu_ != nullptr && (counters_too || gpu_->samples_power())) {
    absl::StatusOr<double> joules = gpu_->Poll();
    if (joules.ok()) {
      gpu_joules_ = *joules;
    } else {
      gpu_description_ = absl::StrCat(gpu_description_, "; n/a since a read failed (",
                                      joules.status().message(), ")");
      gpu_.reset();
      gpu_joules_.reset();
    }
  }
  if (cpu_ != nullptr) {
    absl::StatusOr<double> joules = cpu_->Joules();
    if (joules.ok()) {
      cpu_joules_ = *joules;
    } else {
      cpu_description_ = absl::StrCat(cpu_description_, "; n/a since a read failed (",
                                      joules.status().message(), ")");
      cpu_.reset();
      cpu_joules_.reset();
    }
  }
}

void EnergyMeter::SampleLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto interval = absl::ToChronoNanoseconds(sample_interval_);
  while (!stop_requested_.wait_for(lock, interval, [this] { return stop_; })) {
    PollLocked(/*counters_too=*/false);
  }
}

RankEnergy EnergyMeter::Read() {
  std::lock_guard<std::mutex> lock(mu_);
  PollLocked(/*counters_too=*/true);
  return {{gpu_assigned_, gpu_joules_}, {cpu_assigned_, cpu_joules_}};
}

std::string EnergyMeter::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrCat("GPU ", gpu_description_, "; CPU ", cpu_description_);
}

absl::StatusOr<EnergyReading> SumEnergyOverRanks(Communicator& comm, const RankEnergy& mine) {
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty({kSlots}, DType::kI64));
  ASSIGN_OR_RETURN(absl::Span<int64_t> slots, host.host_span<int64_t>());
  std::fill(slots.begin(), slots.end(), 0);
  PutShare(mine.gpu, &slots[kGpuMillijoules], &slots[kGpuReaders], &slots[kGpuMissing]);
  PutShare(mine.cpu, &slots[kCpuMillijoules], &slots[kCpuReaders], &slots[kCpuMissing]);
  RETURN_IF_ERROR(comm.AllReduce(host, ReduceOp::kSum));  // Over host(), for an NCCL comm.
  return EnergyReading{TakeSum(slots[kGpuMillijoules], slots[kGpuReaders], slots[kGpuMissing]),
                       TakeSum(slots[kCpuMillijoules], slots[kCpuReaders], slots[kCpuMissing])};
}

}  // namespace usine
