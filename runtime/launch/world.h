// The process's place in the job: launch, ranks, node-local ranks, its device, the world
// communicator, and the stop signals that the training loop polls.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<World> world, World::Init());
//   ... world->rank(), world->size(), world->device(), world->comm() ...
//   if (World::StopSignal() != 0) { checkpoint at this step boundary; exit for requeue }
//
// Launch: under `mpirun` (Open MPI), `srun --mpi=pmix` or another PMI launcher, World
// initialises MPI with MPI_THREAD_MULTIPLE (an error if the library cannot provide it) and
// the world communicator is MPI's. A process started with no launcher is a world of one: no
// MPI at all (LocalCommunicator). The world size MPI reports is checked against the
// launcher's own count (OMPI_COMM_WORLD_SIZE, or SLURM_STEP_NUM_TASKS in an srun step), so
// that N processes that each started an MPI world of one are an error, not N copies of the
// same job. The local rank comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED); a rank binds
// CUDA device local_rank % device_count when the machine has GPUs. Init is a collective over
// the world (every rank calls it): a device that one rank cannot bind fails Init on every
// rank ("<communicator> rank R: ..."), not the others' first collective after it.
//
// Signals: SIGTERM and SIGUSR1 are caught and recorded (StopSignal()); they do not end the
// process, so that the training loop can checkpoint at the next step boundary.
//
// One World per process; Init and the destructor are not thread-safe, the accessors are.
#ifndef USINE_RUNTIME_LAUNCH_WORLD_H_
#define USINE_RUNTIME_LAUNCH_WORLD_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"

namespace usine {

enum class Launcher { kNone, kOpenMpi, kSlurm, kPmi };
absl::string_view LauncherName(Launcher launcher);  // "none", "mpirun", "srun", "pmi"

struct WorldOptions {
  // For the world communicator (its default collective timeout). Default: 600 s.
  CommunicatorOptions communicator;
  // Bind this rank's CUDA device (local_rank % device_count) when GPUs exist. Default: true.
  bool bind_device = true;
};

class World {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<World>> Init(WorldOptions options = {});
  // Frees the world communicator, then finalises MPI if Init initialised it.
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  const std::string& hostname() const { return hostname_; }
  Launcher launcher() const { return launcher_; }
  // The bound CUDA device, or the cpu.
  Device device() const { return device_; }
  Communicator& comm() const { return *comm_; }
  // The world communicator for a job whose tensors live on `device`: comm() for the cpu; for
  // this rank's CUDA device (device()), an NCCL communicator over the same ranks, made at the
  // first call (a collective over the world then) and kept until the World goes. It hands
  // host tensors to comm() (communicator.h), so that a ProcessGrid over it serves the model's
  // tensors and the host-side agreements alike. Error for another device, or in a build
  // without CUDA.
  [[nodiscard]] absl::StatusOr<Communicator*> CommunicatorFor(Device device);

  // The last of SIGTERM/SIGUSR1 received since Init, or 0.
  static int StopSignal();

  // Prints `status` (with the rank) and ends the whole job with `exit_code`: MPI_Abort when
  // MPI is running, otherwise _exit.
  [[noreturn]] static void Abort(const absl::Status& status, int exit_code = 1);

 private:
  World() = default;

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string hostname_;
  Launcher launcher_ = Launcher::kNone;
  Device device_ = Device::Cpu();
  bool owns_mpi_ = false;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<Communicator> device_comm_;  // CommunicatorFor(device()), once made.
};

namespace launch_internal {

// The launcher named by these environment variables.
Launcher DetectLauncher(const std::map<std::string, std::string>& env);

// OK unless this is an srun step without PMIx or PMI2, where MPI_Init cannot find the other
// tasks (it fails, or starts worlds of one).
absl::Status CheckPmi(const std::map<std::string, std::string>& env);

// OK when the launcher's own task count (if it states one) equals the MPI world size.
absl::Status CheckWorldSize(int mpi_size, const std::map<std::string, std::string>& env);

// The environment variables that the two functions above read, from this process.
std::map<std::string, std::string> LauncherEnvironment();

}  // namespace launch_internal
}  // namespace usine

#endif  // USINE_RUNTIME_LAUNCH_WORLD_H_
