#include "tests/testing/communicator_on_device.h"

#include <mpi.h>

#include "runtime/core/status_macros.h"
#ifdef USINE_WITH_CUDA
#include "collectives/nccl/nccl_communicator.h"
#endif

namespace usine::testing {
namespace {

// This rank's GPU: local_rank % device count.
Device GpuOfThisRank() {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int local_rank = 0;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_free(&local);
  return Device::Cuda(local_rank % CudaDeviceCount());
}

}  // namespace

absl::StatusOr<CommunicatorOnDevice> CommunicatorOnDevice::Create(Device device,
                                                                  const std::string& name) {
  const CommunicatorOptions options = {.timeout = absl::Seconds(60)};
  CommunicatorOnDevice world;
  ASSIGN_OR_RETURN(world.mpi_, MpiCommunicator::Create(MPI_COMM_WORLD, name, options));
  if (device.is_cpu()) return world;
#ifdef USINE_WITH_CUDA
  ASSIGN_OR_RETURN(world.device_comm_,
                   NcclCommunicator::Create(world.mpi_.get(), GpuOfThisRank(), name, options));
  return world;
#else
  return absl::UnimplementedError("CommunicatorOnDevice: a build without CUDA");
#endif
}

}  // namespace usine::testing
