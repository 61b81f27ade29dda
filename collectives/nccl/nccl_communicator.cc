#include "collectives/nccl/nccl_communicator.h"

#include <cstring>
#include <utility>

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "collectives/internal/completion.h"
#include "collectives/nccl/nccl_comm.h"
#include "collectives/nccl/nccl_work.h"
#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/core/logging.h"
#include "runtime/core/mpi_status.h"
#include "runtime/core/nccl_status.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using collectives_internal::Completed;
using collectives_internal::LaunchNcclCall;
using collectives_internal::NcclComm;

// The element types of reductions (Communicator admits no others there).
absl::StatusOr<ncclDataType_t> NcclType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF16:
      return ncclFloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
    case DType::kF64:
      return ncclFloat64;
    case DType::kU16:
    case DType::kU8:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("NCCL reductions take f32, bf16, f16, i32, i64, not ", DTypeName(dtype)));
}

ncclRedOp_t NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;  // Unreachable: every ReduceOp is handled above.
}

// Chunk `index` of `whole`, `chunk_bytes` long: where an in-place chunk must start.
const void* ChunkStart(const Tensor& whole, int index, size_t chunk_bytes) {
  return static_cast<const char*>(whole.raw_data()) + static_cast<size_t>(index) * chunk_bytes;
}

// The NCCL unique id, made by rank 0 and broadcast over `bootstrap` (made here without one).
absl::StatusOr<ncclUniqueId> ShareUniqueId(MpiCommunicator* bootstrap, absl::string_view what) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (bootstrap == nullptr || bootstrap->rank() == 0) {
    RETURN_IF_ERROR(WithContext(USINE_NCCL_STATUS(ncclGetUniqueId(&id)), what));
  }
  if (bootstrap == nullptr) return id;
  ASSIGN_OR_RETURN(Tensor bytes, Tensor::Empty({static_cast<int64_t>(sizeof(id))}, DType::kU8));
  std::memcpy(bytes.raw_data(), &id, sizeof(id));
  RETURN_IF_ERROR(WithContext(bootstrap->Broadcast(bytes, /*root=*/0), what));
  std::memcpy(&id, bytes.raw_data(), sizeof(id));
  return id;
}

// The channel on which the watchdog finds missing ranks: a duplicate of the bootstrap's MPI
// communicator (a collective over it), kept apart from the bootstrap's own calls.
absl::StatusOr<std::unique_ptr<MpiArrivalProbe>> OpenReportChannel(const MpiCommunicator& bootstrap,
                                                                   absl::string_view what) {
  MPI_Comm reports = MPI_COMM_NULL;
  RETURN_IF_ERROR(
      WithContext(USINE_MPI_STATUS(MPI_Comm_dup(bootstrap.mpi_comm(), &reports)), what));
  MPI_Comm_set_errhandler(reports, MPI_ERRORS_RETURN);
  return std::make_unique<MpiArrivalProbe>(reports);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    MpiCommunicator* bootstrap, Device device, std::string name, CommunicatorOptions options) {
  const int rank = bootstrap != nullptr ? bootstrap->rank() : 0;
  const int size = bootstrap != nullptr ? bootstrap->size() : 1;
  const std::string what = absl::StrCat("creating NCCL communicator '", name, "' (rank ", rank,
                                        " of ", size, ") on ", device.ToString());
  if (!device.is_cuda()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": NCCL needs a CUDA device"));
  }
  RETURN_IF_ERROR(WithContext(CheckDeviceAvailable(device), what));
  ASSIGN_OR_RETURN(const ncclUniqueId id, ShareUniqueId(bootstrap, what));
  std::unique_ptr<MpiArrivalProbe> reports;
  if (bootstrap != nullptr) {
    ASSIGN_OR_RETURN(reports, OpenReportChannel(*bootstrap, what));
  }
  // The ranks have all arrived (the broadcast above waited for rank 0, and rank 0 for the
  // others): set-up is bounded by the deadline alone, without the watchdog.
  ASSIGN_OR_RETURN(std::shared_ptr<NcclComm> comm,
                   NcclComm::Init(id, rank, size, device, std::move(reports),
                                  absl::Now() + options.timeout, what));
  return Assemble(std::move(comm), bootstrap, nullptr, std::move(name), options);
}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Assemble(
    std::shared_ptr<NcclComm> comm, MpiCommunicator* bootstrap,
    std::unique_ptr<MpiCommunicator> owned_bootstrap, std::string name,
    CommunicatorOptions options) {
  const Device device = comm->device();
  const std::string what = absl::StrCat("setting up NCCL communicator '", name, "'");
  absl::StatusOr<Stream> stream = Stream::Create(device);
  if (!stream.ok()) return WithContext(stream.status(), what);
  absl::StatusOr<Tensor> barrier = Tensor::Empty({1}, DType::kI32, device, stream->handle());
  if (!barrier.ok()) return WithContext(barrier.status(), what);
  {
    // Defined contents, for tools such as compute-sanitizer: the value is never read.
    core_internal::CudaDeviceGuard guard;
    RETURN_IF_ERROR(WithContext(guard.Enter(device), what));
    RETURN_IF_ERROR(WithContext(USINE_CUDA_STATUS(cudaMemsetAsync(
                                    barrier->raw_data(), 0, barrier->nbytes(), stream->handle())),
                                what));
  }
  RETURN_IF_ERROR(WithContext(stream->Synchronize(), what));
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(std::move(comm), bootstrap, std::move(owned_bootstrap),
                           *std::move(stream), *std::move(barrier), std::move(name), options));
}

NcclCommunicator::NcclCommunicator(std::shared_ptr<NcclComm> comm, MpiCommunicator* bootstrap,
                                   std::unique_ptr<MpiCommunicator> owned_bootstrap, Stream stream,
                                   Tensor barrier, std::string name, CommunicatorOptions options)
    : Communicator(comm->rank(), comm->size(), std::move(name), comm->device(), options),
      comm_(std::move(comm)),
      bootstrap_(bootstrap),
      owned_bootstrap_(std::move(owned_bootstrap)),
      stream_(std::move(stream)),
      barrier_(std::move(barrier)) {
  if (bootstrap_ == nullptr) {
    local_host_ = std::make_unique<LocalCommunicator>(this->name(), Device::Cpu(), options);
  }
}

NcclCommunicator::~NcclCommunicator() {
  // The stream-ordered calls still in flight: waited for (their tensors may be in use), and
  // an error reported, since no later call will.
  std::lock_guard<std::mutex> lock(in_flight_mu_);
  for (const std::unique_ptr<Work>& work : in_flight_) {
    if (absl::Status status = work->Wait(); !status.ok()) USINE_LOG(ERROR) << status;
  }
  in_flight_.clear();
}

Communicator* NcclCommunicator::HostTwin() const {
  return bootstrap_ != nullptr ? static_cast<Communicator*>(bootstrap_) : local_host_.get();
}

absl::StatusOr<const Stream*> NcclCommunicator::StreamFor(const Call& call) const {
  if (call.stream == nullptr) return &stream_;
  if (call.stream->device() != device()) {
    return absl::InvalidArgumentError(absl::StrCat(call.Describe(*this), ": the stream is on ",
                                                   call.stream->device().ToString(),
                                                   ", the communicator on ", device().ToString()));
  }
  return call.stream;
}

absl::Status NcclCommunicator::ReapInFlight(const Call& call) {
  std::lock_guard<std::mutex> lock(in_flight_mu_);
  while (!in_flight_.empty()) {
    const absl::StatusOr<bool> done = in_flight_.front()->Test();
    if (done.ok() && !*done) return absl::OkStatus();
    in_flight_.pop_front();
    // NCCL's error, or CUDA's, found by an earlier call (whose description it starts with).
    if (!done.ok()) return WithContext(done.status(), call.Describe(*this) + ": not started");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::Park(
    const Call& call, absl::StatusOr<std::unique_ptr<Work>> work) {
  if (!call.stream_ordered || !work.ok()) return work;
  std::lock_guard<std::mutex> lock(in_flight_mu_);
  in_flight_.push_back(*std::move(work));
  return Completed(absl::OkStatus());
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartAllReduce(const Call& call,
                                                                       const Tensor& send,
                                                                       const Tensor& recv,
                                                                       ReduceOp op) {
  if (send.raw_data() != recv.raw_data() && send.Overlaps(recv)) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.Describe(*this), ": send and recv overlap without being the same"));
  }
  ASSIGN_OR_RETURN(const ncclDataType_t type, NcclType(send.dtype()));
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (send.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(call, LaunchNcclCall(comm_, *stream, call.Describe(*this), call.timeout, {send, recv},
                                   call.stream_ordered, "ncclAllReduce",
                                   [&](ncclComm_t comm, cudaStream_t s) {
                                     return ncclAllReduce(send.raw_data(), recv.raw_data(),
                                                          static_cast<size_t>(send.numel()), type,
                                                          NcclOp(op), comm, s);
                                   }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartReduceScatter(const Call& call,
                                                                           const Tensor& send,
                                                                           const Tensor& recv,
                                                                           ReduceOp op) {
  // NCCL's in-place form: recv is this rank's chunk of send.
  if (recv.raw_data() != ChunkStart(send, rank(), recv.nbytes()) && send.Overlaps(recv)) {
    return absl::InvalidArgumentError(absl::StrCat(
        call.Describe(*this), ": recv overlaps send without being chunk ", rank(), " of it"));
  }
  ASSIGN_OR_RETURN(const ncclDataType_t type, NcclType(send.dtype()));
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (recv.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(call, LaunchNcclCall(comm_, *stream, call.Describe(*this), call.timeout, {send, recv},
                                   call.stream_ordered, "ncclReduceScatter",
                                   [&](ncclComm_t comm, cudaStream_t s) {
                                     return ncclReduceScatter(send.raw_data(), recv.raw_data(),
                                                              static_cast<size_t>(recv.numel()),
                                                              type, NcclOp(op), comm, s);
                                   }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartAllGather(const Call& call,
                                                                       const Tensor& send,
                                                                       const Tensor& recv) {
  // NCCL's in-place form: send is this rank's chunk of recv.
  if (send.raw_data() != ChunkStart(recv, rank(), send.nbytes()) && send.Overlaps(recv)) {
    return absl::InvalidArgumentError(absl::StrCat(
        call.Describe(*this), ": send overlaps recv without being chunk ", rank(), " of it"));
  }
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (send.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(call, LaunchNcclCall(comm_, *stream, call.Describe(*this), call.timeout, {send, recv},
                                   call.stream_ordered, "ncclAllGather",
                                   [&](ncclComm_t comm, cudaStream_t s) {
                                     return ncclAllGather(send.raw_data(), recv.raw_data(),
                                                          send.nbytes(), ncclUint8, comm, s);
                                   }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartBroadcast(const Call& call,
                                                                       const Tensor& tensor,
                                                                       int root) {
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (tensor.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(call, LaunchNcclCall(
                        comm_, *stream, call.Describe(*this), call.timeout, {tensor},
                        call.stream_ordered, "ncclBroadcast", [&](ncclComm_t comm, cudaStream_t s) {
                          return ncclBroadcast(tensor.raw_data(), tensor.raw_data(),
                                               tensor.nbytes(), ncclUint8, root, comm, s);
                        }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartBarrier(const Call& call) {
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(call, LaunchNcclCall(comm_, *stream, call.Describe(*this), call.timeout, {barrier_},
                                   call.stream_ordered, "ncclAllReduce",
                                   [&](ncclComm_t comm, cudaStream_t s) {
                                     return ncclAllReduce(barrier_.raw_data(), barrier_.raw_data(),
                                                          1, ncclInt32, ncclSum, comm, s);
                                   }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartSend(const Call& call,
                                                                  const Tensor& tensor, int peer) {
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (tensor.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(
      call, LaunchNcclCall(
                comm_, *stream, absl::StrCat(call.Describe(*this), " to rank ", peer), call.timeout,
                {tensor}, call.stream_ordered, "ncclSend", [&](ncclComm_t comm, cudaStream_t s) {
                  return ncclSend(tensor.raw_data(), tensor.nbytes(), ncclUint8, peer, comm, s);
                }));
}

absl::StatusOr<std::unique_ptr<Work>> NcclCommunicator::StartRecv(const Call& call,
                                                                  const Tensor& tensor, int peer) {
  ASSIGN_OR_RETURN(const Stream* stream, StreamFor(call));
  if (tensor.numel() == 0) return Completed(absl::OkStatus());
  RETURN_IF_ERROR(ReapInFlight(call));
  return Park(
      call, LaunchNcclCall(comm_, *stream, absl::StrCat(call.Describe(*this), " from rank ", peer),
                           call.timeout, {tensor}, call.stream_ordered, "ncclRecv",
                           [&](ncclComm_t comm, cudaStream_t s) {
                             return ncclRecv(tensor.raw_data(), tensor.nbytes(), ncclUint8, peer,
                                             comm, s);
                           }));
}

absl::StatusOr<std::unique_ptr<Communicator>> NcclCommunicator::DoSplit(const Call& call, int color,
                                                                        int key, std::string name) {
  const std::string description = call.Describe(*this);
  std::unique_ptr<MpiCommunicator> child_bootstrap;
  std::unique_ptr<MpiArrivalProbe> reports;
  if (bootstrap_ != nullptr) {
    // Under the MPI communicator's own watch. MpiCommunicator::Split makes MpiCommunicators.
    absl::StatusOr<std::unique_ptr<Communicator>> split = bootstrap_->Split(color, key, name);
    if (!split.ok()) return WithContext(split.status(), description);
    child_bootstrap.reset(static_cast<MpiCommunicator*>(split->release()));
    ASSIGN_OR_RETURN(reports, OpenReportChannel(*child_bootstrap, description));
  }
  Watchdog::Token token = Watchdog::Get().Track(description, call.timeout, comm_->probe());
  ASSIGN_OR_RETURN(
      std::shared_ptr<NcclComm> child,
      comm_->Split(color, key, std::move(reports), absl::Now() + call.timeout, description));
  token.Release();
  if (child_bootstrap != nullptr &&
      (child_bootstrap->rank() != child->rank() || child_bootstrap->size() != child->size())) {
    return absl::InternalError(absl::StrCat(
        description, ": NCCL made rank ", child->rank(), " of ", child->size(),
        " where MPI made rank ", child_bootstrap->rank(), " of ", child_bootstrap->size()));
  }
  MpiCommunicator* const child_bootstrap_view = child_bootstrap.get();
  ASSIGN_OR_RETURN(std::unique_ptr<NcclCommunicator> communicator,
                   Assemble(std::move(child), child_bootstrap_view, std::move(child_bootstrap),
                            std::move(name), options()));
  return std::unique_ptr<Communicator>(std::move(communicator));
}

}  // namespace usine
