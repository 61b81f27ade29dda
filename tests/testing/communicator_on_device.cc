#include "tests/testing/communicator_on_device.h"

#include <mpi.h>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#if USINE_WITH_CUDA
#include "collectives/nccl/nccl_communicator.h"
#endif

namespace usine::testing {
namespace {

#if USINE_WITH_CUDA
struct LocalRanks {
  int rank = 0;  // This rank's index among the ranks of its node.
  int size = 1;  // The node's ranks.
};

LocalRanks LocalRanksOfThisNode() {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  LocalRanks ranks;
  MPI_Comm_rank(local, &ranks.rank);
  MPI_Comm_size(local, &ranks.size);
  MPI_Comm_free(&local);
  return ranks;
}
#endif

}  // namespace

std::optional<std::string> CommunicatorOnDevice::Unavailable(Device device) {
  if (device.is_cpu()) return std::nullopt;
#if !USINE_WITH_CUDA
  return "a build without CUDA";
#else
  const int gpus = CudaDeviceCount();
  if (gpus == 0) return absl::StrCat("no CUDA device: ", CudaUnavailableReason());
#if !USINE_CUDA_EMULATED
  const LocalRanks local = LocalRanksOfThisNode();
  if (local.size > gpus) {
    return absl::StrCat(local.size, " ranks on this node and ", gpus,
                        " GPU(s): NCCL needs one each");
  }
#endif
  return std::nullopt;
#endif
}

absl::StatusOr<CommunicatorOnDevice> CommunicatorOnDevice::Create(Device device,
                                                                  const std::string& name) {
  const CommunicatorOptions options = {.timeout = absl::Seconds(60)};
  CommunicatorOnDevice world;
  ASSIGN_OR_RETURN(world.mpi_, MpiCommunicator::Create(MPI_COMM_WORLD, name, options));
  if (device.is_cpu()) return world;
#if USINE_WITH_CUDA
  const Device gpu = Device::Cuda(LocalRanksOfThisNode().rank % CudaDeviceCount());
  ASSIGN_OR_RETURN(world.device_comm_,
                   NcclCommunicator::Create(world.mpi_.get(), gpu, name, options));
  return world;
#else
  return absl::FailedPreconditionError("CommunicatorOnDevice: a build without CUDA");
#endif
}

void MultiRankDeviceTest::SetUp() {
  DeviceTest::SetUp();
  if (IsSkipped()) return;
  if (std::optional<std::string> why = CommunicatorOnDevice::Unavailable(device())) {
    GTEST_SKIP() << *why;
  }
  ASSERT_OK_AND_ASSIGN(on_device_, CommunicatorOnDevice::Create(device(), "world"));
  world_ = &on_device_->comm();
}

}  // namespace usine::testing
