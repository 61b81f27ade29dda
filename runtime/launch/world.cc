#include "runtime/launch/world.h"

#include <atomic>
#include <cstdlib>

#include <mpi.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "collectives/local/local_communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "runtime/core/logging.h"
#include "runtime/core/mpi_status.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stop_signal.h"

#if USINE_WITH_CUDA
#include "collectives/nccl/nccl_communicator.h"
#endif

namespace usine {
namespace {

std::atomic<bool> world_exists{false};

constexpr const char* kLauncherVariables[] = {"OMPI_COMM_WORLD_SIZE",
                                              "PMIX_RANK",
                                              "SLURM_STEP_NUM_TASKS",
                                              "SLURM_STEP_ID",
                                              "PMI_RANK",
                                              "PMI_SIZE",
                                              "PMI_FD"};

bool MpiRunning() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

absl::string_view LauncherName(Launcher launcher) {
  switch (launcher) {
    case Launcher::kNone:
      return "none";
    case Launcher::kOpenMpi:
      return "mpirun";
    case Launcher::kSlurm:
      return "srun";
    case Launcher::kPmi:
      return "pmi";
  }
  return "invalid";
}

namespace launch_internal {

Launcher DetectLauncher(const std::map<std::string, std::string>& env) {
  if (env.count("OMPI_COMM_WORLD_SIZE")) return Launcher::kOpenMpi;
  // An srun step (not the batch script itself, which also carries SLURM variables).
  if (env.count("SLURM_STEP_NUM_TASKS") && env.count("SLURM_STEP_ID")) return Launcher::kSlurm;
  if (env.count("PMIX_RANK") || env.count("PMI_RANK")) return Launcher::kPmi;
  return Launcher::kNone;
}

absl::Status CheckPmi(const std::map<std::string, std::string>& env) {
  if (DetectLauncher(env) != Launcher::kSlurm || env.count("PMIX_RANK") || env.count("PMI_RANK")) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "srun started this process without a process-management interface, so MPI cannot "
      "connect the step's ",
      env.at("SLURM_STEP_NUM_TASKS"),
      " tasks: launch with `srun --mpi=pmix` (or set MpiDefault=pmix in slurm.conf)"));
}

absl::Status CheckWorldSize(int mpi_size, const std::map<std::string, std::string>& env) {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "PMI_SIZE"}) {
    auto it = env.find(variable);
    if (it == env.end()) continue;
    int expected = 0;
    if (!absl::SimpleAtoi(it->second, &expected)) {
      return absl::InvalidArgumentError(
          absl::StrCat("launcher variable ", variable, "='", it->second, "' is not a number"));
    }
    if (expected != mpi_size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "MPI reports a world of ", mpi_size, " rank(s) but the launcher started ", expected, " (",
          variable, "=", expected, "): each process initialised an MPI world of its own. ",
          "Under SLURM launch with `srun --mpi=pmix` (and an MPI built with PMIx); with Open "
          "MPI use its own mpirun"));
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> LauncherEnvironment() {
  std::map<std::string, std::string> env;
  for (const char* name : kLauncherVariables) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  return env;
}

}  // namespace launch_internal

absl::StatusOr<std::unique_ptr<World>> World::Init(WorldOptions options) {
  if (world_exists.exchange(true)) {
    return absl::FailedPreconditionError("World::Init called twice in one process");
  }
  auto world = std::unique_ptr<World>(new World());
  const auto env = launch_internal::LauncherEnvironment();
  world->launcher_ = launch_internal::DetectLauncher(env);
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  world->hostname_ = host;

  int mpi_initialized = 0;
  MPI_Initialized(&mpi_initialized);
  if (world->launcher_ == Launcher::kNone && !mpi_initialized) {
    world->comm_ =
        std::make_unique<LocalCommunicator>("world", Device::Cpu(), options.communicator);
  } else {
    if (!mpi_initialized) {
      RETURN_IF_ERROR(launch_internal::CheckPmi(env));
      int provided = 0;
      RETURN_IF_ERROR(
          USINE_MPI_STATUS(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided)));
      world->owns_mpi_ = true;
      if (provided < MPI_THREAD_MULTIPLE) {
        return absl::FailedPreconditionError(
            absl::StrCat("the MPI library provides thread level ", provided,
                         ", usine needs MPI_THREAD_MULTIPLE (", MPI_THREAD_MULTIPLE, ")"));
      }
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world->size_);
    RETURN_IF_ERROR(launch_internal::CheckWorldSize(world->size_, env));
    MPI_Comm node = MPI_COMM_NULL;
    RETURN_IF_ERROR(USINE_MPI_STATUS(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED,
                                                         world->rank_, MPI_INFO_NULL, &node)));
    MPI_Comm_rank(node, &world->local_rank_);
    MPI_Comm_size(node, &world->local_size_);
    MPI_Comm_free(&node);
    ASSIGN_OR_RETURN(world->comm_,
                     MpiCommunicator::Create(MPI_COMM_WORLD, "world", options.communicator));
  }
  SetLogRank(world->size_ > 1 ? world->rank_ : -1);
  absl::Status bound;
  if (options.bind_device && CudaDeviceCount() > 0) {
    world->device_ = Device::Cuda(world->local_rank_ % CudaDeviceCount());
    bound = SetCurrentDevice(world->device_);
  }
  // One rank's GPU may refuse (held in exclusive mode, in an error state): every rank fails
  // here, not in its first collective with that one.
  RETURN_IF_ERROR(AgreeOnStatus(*world->comm_, bound));
  InstallStopSignalHandlers();
  USINE_LOG(DEBUG) << "world: rank " << world->rank_ << " of " << world->size_ << " (local "
                   << world->local_rank_ << " of " << world->local_size_ << ") on "
                   << world->hostname_ << ", launcher " << LauncherName(world->launcher_)
                   << ", device " << world->device_;
  return world;
}

absl::StatusOr<Communicator*> World::CommunicatorFor(Device device) {
  if (device.is_cpu()) return comm_.get();
  if (device != device_) {
    return absl::InvalidArgumentError(absl::StrCat("World::CommunicatorFor(", device.ToString(),
                                                   "): this rank's device is ",
                                                   device_.ToString()));
  }
  if (device_comm_ != nullptr) return device_comm_.get();
#if USINE_WITH_CUDA
  // MPI's world bootstraps NCCL's; a world without MPI is a world of one, which needs none.
  auto* mpi = dynamic_cast<MpiCommunicator*>(comm_.get());
  ASSIGN_OR_RETURN(device_comm_,
                   NcclCommunicator::Create(mpi, device, "world", {comm_->default_timeout()}));
  return device_comm_.get();
#else
  return absl::FailedPreconditionError(
      absl::StrCat("World::CommunicatorFor(", device.ToString(), "): this build has no CUDA path"));
#endif
}

World::~World() {
  device_comm_.reset();  // Its MPI bootstrap is comm_.
  comm_.reset();
  if (owns_mpi_ && MpiRunning()) MPI_Finalize();
  world_exists = false;
}

int World::StopSignal() { return usine::StopSignal(); }

void World::Abort(const absl::Status& status, int exit_code) {
  USINE_LOG(ERROR) << status;
  if (MpiRunning()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace usine
