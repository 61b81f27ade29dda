// Energy: RAPL read from a powercap tree in a temporary directory (the kernel's file format),
// wrap-around and unreadable files; NVML missing or not NVML; NVML and a GPU's energy read
// through a stand-in NVML (fake_nvml.h); power integration; the meter's shares and their sum
// over a world of one. A gpu test reads a real GPU's energy.
#include "runtime/train/energy.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <dlfcn.h>
#include <unistd.h>

#include "gtest/gtest.h"

#include "collectives/local/local_communicator.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/random.h"
#include "runtime/train/internal/gpu_energy.h"
#include "runtime/train/internal/nvml_library.h"
#include "runtime/train/internal/power_integrator.h"
#include "runtime/train/internal/rapl_packages.h"
#include "tests/runtime/train/fake_nvml.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

namespace fs = std::filesystem;
using train_internal::GpuEnergy;
using train_internal::NvmlLibrary;
using train_internal::PowerIntegrator;
using train_internal::RaplPackages;
using train_internal::WrappingCounterDelta;

// A kernel's max_energy_range_uj (2^32 units of 61.035 uJ).
constexpr uint64_t kRange = 262143328850;

// A powercap tree as Linux lays it out: two packages, a core sub-domain and psys, whose
// counters must not be added to the packages'.
class PowercapTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("energy_test." + std::to_string(::getpid()) + "." +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "intel-rapl");  // The control type; not a domain.
    Domain("intel-rapl:0", "package-0", 1'000'000);
    Domain("intel-rapl:0:0", "core", 5'000);
    Domain("intel-rapl:1", "package-1", kRange - 1'000'000);
    Domain("intel-rapl:2", "psys", 7'000'000);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Domain(const std::string& dir, const std::string& name, uint64_t energy) {
    fs::create_directories(root_ / dir);
    std::ofstream(root_ / dir / "name") << name << "\n";
    std::ofstream(root_ / dir / "max_energy_range_uj") << kRange << "\n";
    SetEnergy(dir, energy);
  }
  void SetEnergy(const std::string& dir, uint64_t energy) {
    std::ofstream(root_ / dir / "energy_uj") << energy << "\n";
  }

  fs::path root_;
};

TEST(WrappingCounterDelta, CountsAcrossOneWrap) {
  EXPECT_EQ(WrappingCounterDelta(100, 250, 1000), 150u);
  EXPECT_EQ(WrappingCounterDelta(900, 900, 1000), 0u);
  EXPECT_EQ(WrappingCounterDelta(900, 50, 1000), 150u);  // 100 to the top, then 50.
}

TEST_F(PowercapTree, SumsThePackagesOnlyAcrossAWrap) {
  ASSERT_OK_AND_ASSIGN(RaplPackages rapl, RaplPackages::Open(root_.string()));
  EXPECT_EQ(rapl.package_count(), 2);
  ASSERT_OK_AND_ASSIGN(double joules, rapl.Joules());
  EXPECT_EQ(joules, 0.0);
  SetEnergy("intel-rapl:0", 3'500'000);    // +2.5 J
  SetEnergy("intel-rapl:1", 500'000);      // wrapped: +1.0 J to the top, +0.5 J after
  SetEnergy("intel-rapl:0:0", 9'999'999);  // a sub-domain: already in package-0
  SetEnergy("intel-rapl:2", 99'999'999);   // psys: the platform, packages included
  ASSERT_OK_AND_ASSIGN(joules, rapl.Joules());
  EXPECT_DOUBLE_EQ(joules, 4.0);
  SetEnergy("intel-rapl:1", 750'000);  // +0.25 J
  ASSERT_OK_AND_ASSIGN(joules, rapl.Joules());
  EXPECT_DOUBLE_EQ(joules, 4.25);
}

TEST_F(PowercapTree, AnUnreadableCounterIsAnErrorNamingIt) {
  // A directory in the counter's place fails to read as a root-only file does (tests run as
  // root, whom file permissions do not stop).
  fs::remove(root_ / "intel-rapl:1" / "energy_uj");
  fs::create_directories(root_ / "intel-rapl:1" / "energy_uj");
  absl::StatusOr<RaplPackages> rapl = RaplPackages::Open(root_.string());
  ASSERT_FALSE(rapl.ok());
  EXPECT_NE(rapl.status().message().find((root_ / "intel-rapl:1" / "energy_uj").string()),
            std::string::npos)
      << rapl.status();
}

TEST_F(PowercapTree, AMissingOrGarbledFileIsAnError) {
  fs::remove(root_ / "intel-rapl:0" / "max_energy_range_uj");
  absl::StatusOr<RaplPackages> missing = RaplPackages::Open(root_.string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  std::ofstream(root_ / "intel-rapl:0" / "max_energy_range_uj") << "lots\n";
  absl::StatusOr<RaplPackages> garbled = RaplPackages::Open(root_.string());
  EXPECT_EQ(garbled.status().code(), absl::StatusCode::kDataLoss) << garbled.status();
}

TEST_F(PowercapTree, ACounterThatDisappearsFailsTheReadAndKeepsTheTotal) {
  ASSERT_OK_AND_ASSIGN(RaplPackages rapl, RaplPackages::Open(root_.string()));
  SetEnergy("intel-rapl:0", 2'000'000);
  ASSERT_OK_AND_ASSIGN(double joules, rapl.Joules());
  EXPECT_DOUBLE_EQ(joules, 1.0);
  fs::remove(root_ / "intel-rapl:1" / "energy_uj");
  SetEnergy("intel-rapl:0", 3'000'000);
  EXPECT_FALSE(rapl.Joules().ok());
}

TEST(Rapl, NoPackageDomainIsNotFound) {
  EXPECT_EQ(RaplPackages::Open("/nonexistent-powercap").status().code(),
            absl::StatusCode::kNotFound);
}

// Under ThreadSanitizer (Debian's GCC 12) any dlopen after OpenBLAS is loaded ends the
// process: "called_from_lib suppression 'libopenblas.so.0' is matched against 2 libraries"
// (tests/tsan_suppressions.txt). The thread build has no CUDA, so nothing else in it loads NVML.
#if defined(__SANITIZE_THREAD__)
#define USINE_SKIP_DLOPEN_UNDER_TSAN() GTEST_SKIP() << "dlopen under ThreadSanitizer"
#else
#define USINE_SKIP_DLOPEN_UNDER_TSAN() static_cast<void>(0)
#endif

TEST(Nvml, AMissingLibraryIsUnavailableAndNamed) {
  USINE_SKIP_DLOPEN_UNDER_TSAN();
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml =
      NvmlLibrary::Load("libnvidia-ml-not-here.so.1");
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(nvml.status().message().find("libnvidia-ml-not-here.so.1"), std::string::npos);
}

TEST(Nvml, ALibraryWithoutNvmlNamesTheMissingFunction) {
  USINE_SKIP_DLOPEN_UNDER_TSAN();
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml = NvmlLibrary::Load("libc.so.6");
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(nvml.status().message().find("nvmlInit_v2"), std::string::npos) << nvml.status();
}

// The stand-in NVML (fake_nvml.h), loaded by the test as NvmlLibrary loads it, with its
// state reset: one GPU at kBusId.
class FakeNvmlTest : public ::testing::Test {
 protected:
  static constexpr char kBusId[] = "0000:3b:00.0";

  void SetUp() override {
    USINE_SKIP_DLOPEN_UNDER_TSAN();
    library_ = dlopen(USINE_FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(library_, nullptr) << dlerror();
    auto fake_nvml = reinterpret_cast<FakeNvmlState* (*)()>(dlsym(library_, "FakeNvml"));
    ASSERT_NE(fake_nvml, nullptr) << dlerror();
    nvml_ = fake_nvml();
    *nvml_ = FakeNvmlState{};
    nvml_->bus_id = kBusId;
  }
  void TearDown() override {
    if (library_ != nullptr) dlclose(library_);
  }

  void* library_ = nullptr;
  FakeNvmlState* nvml_ = nullptr;
};

TEST_F(FakeNvmlTest, ReadsTheGpuInNvmlsUnitsAndShutsNvmlDownOnce) {
  nvml_->energy_millijoules = 5'000'123;
  nvml_->power_milliwatts = 123'456;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<NvmlLibrary> nvml,
                         NvmlLibrary::Load(USINE_FAKE_NVML_PATH));
    EXPECT_EQ(nvml_->inits, 1);
    ASSERT_OK_AND_ASSIGN(NvmlLibrary::Device gpu, nvml->DeviceByPciBusId(kBusId));
    ASSERT_OK_AND_ASSIGN(std::string name, nvml->Name(gpu));
    EXPECT_EQ(name, "Fake GPU 80GB");
    ASSERT_OK_AND_ASSIGN(uint64_t millijoules, nvml->TotalEnergyMillijoules(gpu));
    EXPECT_EQ(millijoules, 5'000'123u);
    ASSERT_OK_AND_ASSIGN(double watts, nvml->PowerWatts(gpu));
    EXPECT_DOUBLE_EQ(watts, 123.456);
    EXPECT_EQ(nvml_->shutdowns, 0);
  }
  EXPECT_EQ(nvml_->inits, 1);
  EXPECT_EQ(nvml_->shutdowns, 1);
}

TEST_F(FakeNvmlTest, ErrorsNameTheCallAndCarryNvmlsMessage) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NvmlLibrary> nvml, NvmlLibrary::Load(USINE_FAKE_NVML_PATH));
  absl::StatusOr<NvmlLibrary::Device> elsewhere = nvml->DeviceByPciBusId("0000:af:00.0");
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(elsewhere.status().message(),
            "nvmlDeviceGetHandleByPciBusId_v2(0000:af:00.0): Not Found (NVML error 6)");
  ASSERT_OK_AND_ASSIGN(NvmlLibrary::Device gpu, nvml->DeviceByPciBusId(kBusId));
  nvml_->energy_result = kFakeNvmlErrorNotSupported;
  absl::StatusOr<uint64_t> energy = nvml->TotalEnergyMillijoules(gpu);
  EXPECT_EQ(energy.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(energy.status().message(),
            "nvmlDeviceGetTotalEnergyConsumption: Not Supported (NVML error 3)");
  nvml_->power_result = kFakeNvmlErrorGpuIsLost;
  absl::StatusOr<double> power = nvml->PowerWatts(gpu);
  EXPECT_EQ(power.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(power.status().message(), "nvmlDeviceGetPowerUsage: GPU is lost (NVML error 15)");
}

TEST_F(FakeNvmlTest, AFailedInitIsUnavailableNamesTheLibraryAndIsNotShutDown) {
  nvml_->init_result = kFakeNvmlErrorDriverNotLoaded;
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml = NvmlLibrary::Load(USINE_FAKE_NVML_PATH);
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(nvml.status().message(),
            std::string(USINE_FAKE_NVML_PATH) + ": nvmlInit_v2: Driver Not Loaded (NVML error 9)");
  EXPECT_EQ(nvml_->shutdowns, 0);
}

using GpuEnergyOnFakeNvmlTest = FakeNvmlTest;

TEST_F(GpuEnergyOnFakeNvmlTest, IsTheCounterSinceStart) {
  nvml_->energy_millijoules = 5'000'000;
  nvml_->energy_step_millijoules = 1'234;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GpuEnergy> gpu,
                       GpuEnergy::StartAtPciBusId(USINE_FAKE_NVML_PATH, kBusId, Device::Cuda(0)));
  EXPECT_FALSE(gpu->samples_power());
  EXPECT_EQ(gpu->description(), "cuda:0 (Fake GPU 80GB, 0000:3b:00.0): NVML energy counter");
  nvml_->power_result = kFakeNvmlErrorGpuIsLost;  // The counter needs no power reads.
  ASSERT_OK_AND_ASSIGN(double joules, gpu->Poll());
  EXPECT_DOUBLE_EQ(joules, 1.234);
  ASSERT_OK_AND_ASSIGN(joules, gpu->Poll());
  EXPECT_DOUBLE_EQ(joules, 2.468);
}

TEST_F(GpuEnergyOnFakeNvmlTest, WithoutACounterIntegratesThePowerSampledAtStartAndEachPoll) {
  using Clock = std::chrono::steady_clock;
  nvml_->energy_result = kFakeNvmlErrorNotSupported;
  nvml_->power_milliwatts = 100'000;
  const Clock::time_point before_start = Clock::now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GpuEnergy> gpu,
                       GpuEnergy::StartAtPciBusId(USINE_FAKE_NVML_PATH, kBusId, Device::Cuda(0)));
  const Clock::time_point after_start = Clock::now();
  EXPECT_TRUE(gpu->samples_power());
  EXPECT_EQ(gpu->description(), "cuda:0 (Fake GPU 80GB, 0000:3b:00.0): NVML power samples");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  nvml_->power_milliwatts = 300'000;
  const Clock::time_point before_poll = Clock::now();
  ASSERT_OK_AND_ASSIGN(double joules, gpu->Poll());
  const Clock::time_point after_poll = Clock::now();
  // The trapezoid from 100 W at Start to 300 W at the Poll: 200 W over an interval that lies
  // between these clock readings, however long a loaded machine takes over each call.
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  EXPECT_GE(joules, 200 * seconds(before_poll - after_start) * (1 - 1e-9));
  EXPECT_LE(joules, 200 * seconds(after_poll - before_start) * (1 + 1e-9));
  EXPECT_GE(joules, 200 * 0.050 * (1 - 1e-9));
}

TEST_F(GpuEnergyOnFakeNvmlTest, AFailingReadIsAnErrorWithNvmlsMessage) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GpuEnergy> counter,
                       GpuEnergy::StartAtPciBusId(USINE_FAKE_NVML_PATH, kBusId, Device::Cuda(0)));
  nvml_->energy_result = kFakeNvmlErrorGpuIsLost;
  absl::StatusOr<double> joules = counter->Poll();
  EXPECT_EQ(joules.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(joules.status().message(),
            "nvmlDeviceGetTotalEnergyConsumption: GPU is lost (NVML error 15)");

  nvml_->energy_result = kFakeNvmlErrorNotSupported;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GpuEnergy> power,
                       GpuEnergy::StartAtPciBusId(USINE_FAKE_NVML_PATH, kBusId, Device::Cuda(0)));
  nvml_->power_result = kFakeNvmlErrorGpuIsLost;
  joules = power->Poll();
  EXPECT_EQ(joules.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(joules.status().message(), "nvmlDeviceGetPowerUsage: GPU is lost (NVML error 15)");
}

TEST_F(GpuEnergyOnFakeNvmlTest, AnUnknownGpuIsUnavailableAndReleasesNvml) {
  absl::StatusOr<std::unique_ptr<GpuEnergy>> gpu =
      GpuEnergy::StartAtPciBusId(USINE_FAKE_NVML_PATH, "0000:af:00.0", Device::Cuda(1));
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(gpu.status().message().find("0000:af:00.0): Not Found"), std::string::npos)
      << gpu.status();
  EXPECT_EQ(nvml_->inits, 1);
  EXPECT_EQ(nvml_->shutdowns, 1);
}

TEST(PowerIntegrator, IsTheTrapezoidRule) {
  PowerIntegrator energy;
  energy.Add(absl::Seconds(10), 100);
  EXPECT_EQ(energy.joules(), 0.0);
  energy.Add(absl::Seconds(11), 200);        // 150 J
  energy.Add(absl::Seconds(13), 200);        // 400 J
  energy.Add(absl::Milliseconds(13500), 0);  // 50 J
  EXPECT_DOUBLE_EQ(energy.joules(), 600);
}

TEST(EnergyReading, TotalsAndDifferencesKeepMissingSourcesMissing) {
  const EnergyReading before{.gpu_joules = 100, .cpu_joules = std::nullopt};
  const EnergyReading after{.gpu_joules = 160, .cpu_joules = 40};
  EXPECT_EQ(before.Total(), 100);
  EXPECT_EQ(after.Total(), 200);
  EXPECT_FALSE(EnergyReading{}.Total().has_value());
  const EnergyReading step = after.Since(before);
  EXPECT_EQ(step.gpu_joules, 60);
  EXPECT_FALSE(step.cpu_joules.has_value());
}

TEST_F(PowercapTree, TheMeterReadsItsSourcesSinceItStarted) {
  std::unique_ptr<EnergyMeter> meter =
      EnergyMeter::Start({.cpu_packages = true,
                          .powercap_root = root_.string(),
                          .sample_interval = absl::Milliseconds(5)});
  SetEnergy("intel-rapl:0", 1'250'000);
  const RankEnergy energy = meter->Read();
  EXPECT_FALSE(energy.gpu.assigned);
  EXPECT_FALSE(energy.gpu.joules.has_value());
  EXPECT_TRUE(energy.cpu.assigned);
  EXPECT_EQ(energy.cpu.joules, 0.25);
  EXPECT_NE(meter->Describe().find("CPU 2 RAPL package(s)"), std::string::npos)
      << meter->Describe();
  // A counter that goes away makes the CPU unavailable from then on, not 0.
  fs::remove_all(root_ / "intel-rapl:0");
  EXPECT_FALSE(meter->Read().cpu.joules.has_value());
  SetEnergy("intel-rapl:1", 0);
  EXPECT_FALSE(meter->Read().cpu.joules.has_value());
  EXPECT_NE(meter->Describe().find("n/a since a read failed"), std::string::npos)
      << meter->Describe();
}

TEST(EnergyMeter, UnreadableSourcesAreUnavailableNotErrors) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "this machine has a GPU";
  std::unique_ptr<EnergyMeter> meter = EnergyMeter::Start(
      {.gpu = Device::Cuda(0), .cpu_packages = true, .powercap_root = "/nonexistent-powercap"});
  const RankEnergy energy = meter->Read();
  EXPECT_TRUE(energy.gpu.assigned);
  EXPECT_FALSE(energy.gpu.joules.has_value());
  EXPECT_TRUE(energy.cpu.assigned);
  EXPECT_FALSE(energy.cpu.joules.has_value());
  const std::string description = meter->Describe();
  EXPECT_NE(description.find("GPU cuda:0 n/a ("), std::string::npos) << description;
  EXPECT_NE(description.find("CPU n/a (/nonexistent-powercap"), std::string::npos) << description;
}

using EnergyMeterOnFakeNvmlTest = FakeNvmlTest;

// The meter over the stand-in NVML's energy counter: the joules since Start at each Read (the
// counter read by Read itself), the GPU named in Describe; a failing read makes the GPU n/a
// from then on, not 0, and says why; NVML is shut down once, with the meter.
TEST_F(EnergyMeterOnFakeNvmlTest, ReadsTheCounterSinceStartUntilAReadFails) {
  nvml_->energy_millijoules = 7'000'000;
  nvml_->energy_step_millijoules = 2'500;
  {
    std::unique_ptr<EnergyMeter> meter =
        EnergyMeter::Start({.gpu = Device::Cuda(0),
                            .gpu_pci_bus_id = kBusId,
                            .nvml_library = USINE_FAKE_NVML_PATH,
                            .sample_interval = absl::Milliseconds(5)});
    EXPECT_EQ(meter->Describe(),
              "GPU cuda:0 (Fake GPU 80GB, 0000:3b:00.0): NVML energy counter; CPU not read by "
              "this rank");
    RankEnergy energy = meter->Read();
    EXPECT_TRUE(energy.gpu.assigned);
    EXPECT_FALSE(energy.cpu.assigned);
    EXPECT_DOUBLE_EQ(energy.gpu.joules.value_or(-1), 2.5);
    energy = meter->Read();
    EXPECT_DOUBLE_EQ(energy.gpu.joules.value_or(-1), 5.0);
    nvml_->energy_result = kFakeNvmlErrorGpuIsLost;
    EXPECT_FALSE(meter->Read().gpu.joules.has_value());
    nvml_->energy_result = kFakeNvmlSuccess;
    energy = meter->Read();
    EXPECT_TRUE(energy.gpu.assigned);
    EXPECT_FALSE(energy.gpu.joules.has_value());
    EXPECT_NE(meter->Describe().find("; n/a since a read failed (nvmlDeviceGetTotalEnergy"
                                     "Consumption: GPU is lost"),
              std::string::npos)
        << meter->Describe();
  }
  EXPECT_EQ(nvml_->inits, 1);
  EXPECT_EQ(nvml_->shutdowns, 1);
}

// Without an energy counter the meter integrates power samples (its thread's, every interval,
// and Read's own): joules of 150 W over the time between Start and Read (within the bounds of
// the clock readings around them), more at a later Read; an unknown GPU is n/a with NVML's
// reason.
TEST_F(EnergyMeterOnFakeNvmlTest, WithoutACounterIntegratesThePowerSamples) {
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  nvml_->energy_result = kFakeNvmlErrorNotSupported;
  nvml_->power_milliwatts = 150'000;
  const Clock::time_point before_start = Clock::now();
  std::unique_ptr<EnergyMeter> meter =
      EnergyMeter::Start({.gpu = Device::Cuda(0),
                          .gpu_pci_bus_id = kBusId,
                          .nvml_library = USINE_FAKE_NVML_PATH,
                          .sample_interval = absl::Milliseconds(5)});
  const Clock::time_point after_start = Clock::now();
  EXPECT_NE(meter->Describe().find("NVML power samples"), std::string::npos) << meter->Describe();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  const Clock::time_point before_read = Clock::now();
  const RankEnergy energy = meter->Read();
  const Clock::time_point after_read = Clock::now();
  ASSERT_TRUE(energy.gpu.joules.has_value()) << meter->Describe();
  // Read integrates up to the sample it takes now.
  EXPECT_GE(*energy.gpu.joules, 150 * seconds(before_read - after_start) * (1 - 1e-9));
  EXPECT_LE(*energy.gpu.joules, 150 * seconds(after_read - before_start) * (1 + 1e-9));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GT(meter->Read().gpu.joules.value_or(0), *energy.gpu.joules);

  std::unique_ptr<EnergyMeter> elsewhere =
      EnergyMeter::Start({.gpu = Device::Cuda(1),
                          .gpu_pci_bus_id = "0000:af:00.0",
                          .nvml_library = USINE_FAKE_NVML_PATH});
  EXPECT_FALSE(elsewhere->Read().gpu.joules.has_value());
  EXPECT_NE(elsewhere->Describe().find("GPU cuda:1 n/a (nvmlDeviceGetHandleByPciBusId_v2("
                                       "0000:af:00.0): Not Found"),
            std::string::npos)
      << elsewhere->Describe();
}

TEST(SumEnergyOverRanks, AWorldOfOneIsItsOwnShareToTheMillijoule) {
  LocalCommunicator world("world");
  ASSERT_OK_AND_ASSIGN(EnergyReading sum,
                       SumEnergyOverRanks(world, {{true, 12.3456}, {true, std::nullopt}}));
  EXPECT_DOUBLE_EQ(*sum.gpu_joules, 12.346);
  EXPECT_FALSE(sum.cpu_joules.has_value());  // Assigned but unreadable: n/a, not 0.
  ASSERT_OK_AND_ASSIGN(sum, SumEnergyOverRanks(world, {{false, std::nullopt}, {true, 0.0}}));
  EXPECT_FALSE(sum.gpu_joules.has_value());  // Nobody reads a GPU.
  EXPECT_EQ(sum.cpu_joules, 0.0);            // Read, and nothing used (yet).
}

TEST(AssignEnergySources, AWorldOfOneReadsEverything) {
  LocalCommunicator world("world");
  ASSERT_OK_AND_ASSIGN(EnergyMeterOptions cpu, AssignEnergySources(world, Device::Cpu()));
  EXPECT_FALSE(cpu.gpu.has_value());
  EXPECT_TRUE(cpu.cpu_packages);
  ASSERT_OK_AND_ASSIGN(EnergyMeterOptions gpu, AssignEnergySources(world, Device::Cuda(0)));
  EXPECT_EQ(gpu.gpu, Device::Cuda(0));
  EXPECT_TRUE(gpu.cpu_packages);
}

class EnergyMeterGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  }
};

TEST_F(EnergyMeterGpuTest, AWorkingGpuUsesANonDecreasingPositiveEnergy) {
  std::unique_ptr<EnergyMeter> meter = EnergyMeter::Start({.gpu = Device::Cuda(0)});
  std::cout << "energy: " << meter->Describe() << "\n";
  const Device gpu = Device::Cuda(0);
  ASSERT_OK_AND_ASSIGN(Tensor a, Tensor::Empty({4096, 4096}, DType::kF32, gpu));
  ASSERT_OK_AND_ASSIGN(Tensor c, Tensor::Empty({4096, 4096}, DType::kF32, gpu));
  ASSERT_OK(RandomUniform(a, 1, 0, -1.0f, 1.0f));
  double previous = 0;
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(1)) {  // Work long enough for the counter to move.
    for (int i = 0; i < 8; ++i) ASSERT_OK(Matmul(a, a, c));
    const RankEnergy energy = meter->Read();
    ASSERT_TRUE(energy.gpu.assigned);
    ASSERT_TRUE(energy.gpu.joules.has_value()) << meter->Describe();
    EXPECT_GE(*energy.gpu.joules, previous);
    previous = *energy.gpu.joules;
  }
  EXPECT_GT(previous, 0.0) << meter->Describe();
}

}  // namespace
}  // namespace usine
