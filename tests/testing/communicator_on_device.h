// The world communicator of a multi-rank test for tensors on a given device kind, under
// mpirun: the MPI backend for the cpu; for CUDA, the NCCL backend over it, each rank on GPU
// local_rank % count (as World binds it). A suite over Device gets it from its fixture:
//
//   class AllGatherTest : public MultiRankDeviceTest {};
//   TEST_P(AllGatherTest, GathersEveryRanksChunk) {
//     ... Tensor::Empty({n}, DType::kF32, here()) ... world_->AllGather(mine, all) ...
//   }
//   USINE_INSTANTIATE_DEVICE_TESTS(AllGatherTest);
#ifndef USINE_TESTS_TESTING_COMMUNICATOR_ON_DEVICE_H_
#define USINE_TESTS_TESTING_COMMUNICATOR_ON_DEVICE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "runtime/core/device.h"
#include "tests/testing/device_test.h"

namespace usine::testing {

class CommunicatorOnDevice {
 public:
  // Why this job cannot have a world on `device`'s kind, or nullopt: a build without CUDA, no
  // GPU, or fewer GPUs on this node than ranks (NCCL refuses two ranks on one GPU; under the
  // CUDA emulator, USINE_CUDA_EMULATED, each rank has a GPU of its own). A collective over
  // MPI_COMM_WORLD for CUDA, with the same answer on every rank of a node.
  static std::optional<std::string> Unavailable(Device device);

  // A collective over MPI_COMM_WORLD. `device` says the kind (cpu or cuda); the index of a
  // CUDA device is this rank's. Calls time out after 60 s. REQUIRES: !Unavailable(device).
  [[nodiscard]] static absl::StatusOr<CommunicatorOnDevice> Create(Device device,
                                                                   const std::string& name);

  Communicator& comm() const { return device_comm_ ? *device_comm_ : *mpi_; }

 private:
  std::unique_ptr<MpiCommunicator> mpi_;       // The bootstrap of device_comm_ too.
  std::unique_ptr<Communicator> device_comm_;  // NCCL's, for CUDA; else null.
};

// A suite over Device (device_test.h) whose cases run on every rank of an mpirun job, with the
// world on the device's kind in world_; a case skips where the job cannot have one
// (CommunicatorOnDevice::Unavailable), on every rank alike.
class MultiRankDeviceTest : public DeviceTest {
 protected:
  void SetUp() override;
  // Where this rank's tensors go: the world's device.
  Device here() const { return world_->device(); }

  Communicator* world_ = nullptr;  // Set by SetUp unless the case skips.

 private:
  std::optional<CommunicatorOnDevice> on_device_;
};

}  // namespace usine::testing

#endif  // USINE_TESTS_TESTING_COMMUNICATOR_ON_DEVICE_H_
