#include "collectives/local/local_communicator.h"

#include "collectives/internal/completion.h"
#include "runtime/kernels/copy.h"

namespace usine {

using collectives_internal::Completed;

// With one rank every reduction of `send` is `send` itself (kAvg divides by 1), and every
// gather or scatter is a copy; the copy runs on the call's stream for CUDA tensors.
namespace {

std::unique_ptr<Work> CopyOnStream(const Tensor& send, const Tensor& recv, const Stream* stream) {
  if (send.raw_data() == recv.raw_data()) return Completed(absl::OkStatus());
  if (stream == nullptr) return Completed(Copy(send, recv));
  return Completed(Copy(send, recv, *stream));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartAllReduce(const Call& call,
                                                                        const Tensor& send,
                                                                        const Tensor& recv,
                                                                        ReduceOp) {
  return CopyOnStream(send, recv, call.stream);
}

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartReduceScatter(const Call& call,
                                                                            const Tensor& send,
                                                                            const Tensor& recv,
                                                                            ReduceOp) {
  return CopyOnStream(send, recv, call.stream);
}

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartAllGather(const Call& call,
                                                                        const Tensor& send,
                                                                        const Tensor& recv) {
  return CopyOnStream(send, recv, call.stream);
}

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartBroadcast(const Call&, const Tensor&,
                                                                        int) {
  return Completed(absl::OkStatus());
}

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartBarrier(const Call&) {
  return Completed(absl::OkStatus());
}

// Unreachable: Communicator rejects a peer that is not another rank, and there is none.
absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartSend(const Call&, const Tensor&,
                                                                   int) {
  return absl::InvalidArgumentError("Send in a world of one");
}

absl::StatusOr<std::unique_ptr<Work>> LocalCommunicator::StartRecv(const Call&, const Tensor&,
                                                                   int) {
  return absl::InvalidArgumentError("Recv in a world of one");
}

absl::StatusOr<std::unique_ptr<Communicator>> LocalCommunicator::DoSplit(const Call&, int, int,
                                                                         std::string name) {
  return std::unique_ptr<Communicator>(
      std::make_unique<LocalCommunicator>(std::move(name), device(), options()));
}

}  // namespace usine
