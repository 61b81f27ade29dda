#include "collectives/communicator.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {

absl::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "invalid";
}

absl::string_view CollectiveKindName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return "allreduce";
    case CollectiveKind::kReduceScatter:
      return "reducescatter";
    case CollectiveKind::kAllGather:
      return "allgather";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kBarrier:
      return "barrier";
    case CollectiveKind::kSend:
      return "send";
    case CollectiveKind::kRecv:
      return "recv";
    case CollectiveKind::kSplit:
      return "split";
  }
  return "invalid";
}

std::string Communicator::Call::Describe(const Communicator& comm) const {
  return absl::StrCat(CollectiveKindName(kind), sequence > 0 ? absl::StrCat(" #", sequence) : "",
                      " on communicator '", comm.name(), "' (rank ", comm.rank(), " of ",
                      comm.size(), ")");
}

Communicator::Call Communicator::NextCall(CollectiveKind kind, const CollectiveOptions& options,
                                          bool sequenced, bool blocking) {
  Call call;
  call.blocking = blocking;
  call.stream_ordered = blocking && options.stream_ordered;
  call.kind = kind;
  call.sequence = sequenced ? next_sequence_++ : 0;
  call.timeout = options.timeout > absl::ZeroDuration() ? options.timeout : options_.timeout;
  call.stream = options.stream;
  return call;
}

Communicator* Communicator::TwinFor(const Tensor& t) const {
  Communicator* twin = HostTwin();
  return twin != nullptr && t.defined() && t.device().is_cpu() ? twin : nullptr;
}

absl::Status Communicator::CheckTensor(const Tensor& t, absl::string_view what,
                                       bool any_dtype) const {
  RETURN_IF_ERROR(CheckDefined(t, what));
  if (t.device() != device_) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", t.DebugString(), ", but the ",
                                                   backend(), " communicator '", name_,
                                                   "' works on ", device_.ToString()));
  }
  const DType d = t.dtype();
  if (!any_dtype && d != DType::kF32 && d != DType::kBF16 && d != DType::kF16 && d != DType::kI32 &&
      d != DType::kI64) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", t.DebugString(), ": reductions take f32, bf16, f16, i32, i64"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status CheckReduceOp(ReduceOp op, const Tensor& t, absl::string_view call) {
  if (op == ReduceOp::kAvg && !IsFloatingPoint(t.dtype())) {
    return absl::InvalidArgumentError(
        absl::StrCat(call, ": avg of ", t.DebugString(), " (avg needs a floating dtype)"));
  }
  return absl::OkStatus();
}

absl::Status CheckChunks(absl::string_view call, const Tensor& whole, const Tensor& chunk,
                         int size) {
  RETURN_IF_ERROR(CheckSameDType(whole, chunk, absl::StrCat(call, " ", "send"), "recv"));
  if (whole.numel() != chunk.numel() * size) {
    return absl::InvalidArgumentError(absl::StrCat(call, ": ", whole.DebugString(), " must hold ",
                                                   size, " chunks of ", chunk.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status CheckPeer(absl::string_view call, int peer, const Communicator& comm) {
  if (peer < 0 || peer >= comm.size() || peer == comm.rank()) {
    return absl::InvalidArgumentError(absl::StrCat(call, " on communicator '", comm.name(),
                                                   "': peer ", peer, " is not another rank of ",
                                                   comm.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Work>> Communicator::AllReduceImpl(const Tensor& send,
                                                                  const Tensor& recv, ReduceOp op,
                                                                  const CollectiveOptions& options,
                                                                  bool blocking) {
  if (Communicator* twin = TwinFor(send)) {
    return twin->AllReduceImpl(send, recv, op, options, blocking);
  }
  RETURN_IF_ERROR(CheckTensor(send, "AllReduce send", false));
  RETURN_IF_ERROR(CheckTensor(recv, "AllReduce recv", false));
  RETURN_IF_ERROR(CheckSameDType(send, recv, "AllReduce send", "recv"));
  if (send.numel() != recv.numel()) {
    return absl::InvalidArgumentError(absl::StrCat("AllReduce: send ", send.DebugString(),
                                                   " and recv ", recv.DebugString(),
                                                   " differ in element count"));
  }
  RETURN_IF_ERROR(CheckReduceOp(op, send, "AllReduce"));
  return StartAllReduce(NextCall(CollectiveKind::kAllReduce, options, true, blocking), send, recv,
                        op);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::ReduceScatterImpl(
    const Tensor& send, const Tensor& recv, ReduceOp op, const CollectiveOptions& options,
    bool blocking) {
  if (Communicator* twin = TwinFor(send)) {
    return twin->ReduceScatterImpl(send, recv, op, options, blocking);
  }
  RETURN_IF_ERROR(CheckTensor(send, "ReduceScatter send", false));
  RETURN_IF_ERROR(CheckTensor(recv, "ReduceScatter recv", false));
  RETURN_IF_ERROR(CheckChunks("ReduceScatter", send, recv, size_));
  RETURN_IF_ERROR(CheckReduceOp(op, send, "ReduceScatter"));
  return StartReduceScatter(NextCall(CollectiveKind::kReduceScatter, options, true, blocking), send,
                            recv, op);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::AllGatherImpl(const Tensor& send,
                                                                  const Tensor& recv,
                                                                  const CollectiveOptions& options,
                                                                  bool blocking) {
  if (Communicator* twin = TwinFor(send)) return twin->AllGatherImpl(send, recv, options, blocking);
  RETURN_IF_ERROR(CheckTensor(send, "AllGather send", true));
  RETURN_IF_ERROR(CheckTensor(recv, "AllGather recv", true));
  RETURN_IF_ERROR(CheckChunks("AllGather", recv, send, size_));
  return StartAllGather(NextCall(CollectiveKind::kAllGather, options, true, blocking), send, recv);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::BroadcastImpl(const Tensor& tensor, int root,
                                                                  const CollectiveOptions& options,
                                                                  bool blocking) {
  if (Communicator* twin = TwinFor(tensor))
    return twin->BroadcastImpl(tensor, root, options, blocking);
  RETURN_IF_ERROR(CheckTensor(tensor, "Broadcast tensor", true));
  if (root < 0 || root >= size_) {
    return absl::InvalidArgumentError(absl::StrCat("Broadcast on communicator '", name_, "': root ",
                                                   root, " is not a rank of ", size_));
  }
  return StartBroadcast(NextCall(CollectiveKind::kBroadcast, options, true, blocking), tensor,
                        root);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::BarrierImpl(const CollectiveOptions& options,
                                                                bool blocking) {
  return StartBarrier(NextCall(CollectiveKind::kBarrier, options, true, blocking));
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::SendImpl(const Tensor& tensor, int peer,
                                                             const CollectiveOptions& options,
                                                             bool blocking) {
  if (Communicator* twin = TwinFor(tensor)) return twin->SendImpl(tensor, peer, options, blocking);
  RETURN_IF_ERROR(CheckTensor(tensor, "Send tensor", true));
  RETURN_IF_ERROR(CheckPeer("Send", peer, *this));
  return StartSend(NextCall(CollectiveKind::kSend, options, false, blocking), tensor, peer);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::RecvImpl(const Tensor& tensor, int peer,
                                                             const CollectiveOptions& options,
                                                             bool blocking) {
  if (Communicator* twin = TwinFor(tensor)) return twin->RecvImpl(tensor, peer, options, blocking);
  RETURN_IF_ERROR(CheckTensor(tensor, "Recv tensor", true));
  RETURN_IF_ERROR(CheckPeer("Recv", peer, *this));
  return StartRecv(NextCall(CollectiveKind::kRecv, options, false, blocking), tensor, peer);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Split(int color, int key,
                                                                  std::string name) {
  if (color < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Split of communicator '", name_, "': color ", color, " is negative"));
  }
  return DoSplit(NextCall(CollectiveKind::kSplit, {}, true, true), color, key, std::move(name));
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::AllReduceAsync(
    const Tensor& send, const Tensor& recv, ReduceOp op, const CollectiveOptions& options) {
  return AllReduceImpl(send, recv, op, options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::ReduceScatterAsync(
    const Tensor& send, const Tensor& recv, ReduceOp op, const CollectiveOptions& options) {
  return ReduceScatterImpl(send, recv, op, options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::AllGatherAsync(
    const Tensor& send, const Tensor& recv, const CollectiveOptions& options) {
  return AllGatherImpl(send, recv, options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::BroadcastAsync(
    const Tensor& tensor, int root, const CollectiveOptions& options) {
  return BroadcastImpl(tensor, root, options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::BarrierAsync(const CollectiveOptions& options) {
  return BarrierImpl(options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::SendAsync(const Tensor& tensor, int peer,
                                                              const CollectiveOptions& options) {
  return SendImpl(tensor, peer, options, /*blocking=*/false);
}

absl::StatusOr<std::unique_ptr<Work>> Communicator::RecvAsync(const Tensor& tensor, int peer,
                                                              const CollectiveOptions& options) {
  return RecvImpl(tensor, peer, options, /*blocking=*/false);
}

namespace {

absl::Status WaitFor(absl::StatusOr<std::unique_ptr<Work>> work) {
  if (!work.ok()) return work.status();
  return (*work)->Wait();
}

}  // namespace

absl::Status Communicator::AllReduce(const Tensor& send, const Tensor& recv, ReduceOp op,
                                     const CollectiveOptions& options) {
  return WaitFor(AllReduceImpl(send, recv, op, options, /*blocking=*/true));
}

absl::Status Communicator::AllReduce(const Tensor& tensor, ReduceOp op,
                                     const CollectiveOptions& options) {
  return WaitFor(AllReduceImpl(tensor, tensor, op, options, /*blocking=*/true));
}

absl::Status Communicator::ReduceScatter(const Tensor& send, const Tensor& recv, ReduceOp op,
                                         const CollectiveOptions& options) {
  return WaitFor(ReduceScatterImpl(send, recv, op, options, /*blocking=*/true));
}

absl::Status Communicator::AllGather(const Tensor& send, const Tensor& recv,
                                     const CollectiveOptions& options) {
  return WaitFor(AllGatherImpl(send, recv, options, /*blocking=*/true));
}

absl::Status Communicator::Broadcast(const Tensor& tensor, int root,
                                     const CollectiveOptions& options) {
  return WaitFor(BroadcastImpl(tensor, root, options, /*blocking=*/true));
}

absl::Status Communicator::Barrier(const CollectiveOptions& options) {
  return WaitFor(BarrierImpl(options, /*blocking=*/true));
}

absl::Status Communicator::Send(const Tensor& tensor, int peer, const CollectiveOptions& options) {
  return WaitFor(SendImpl(tensor, peer, options, /*blocking=*/true));
}

absl::Status Communicator::Recv(const Tensor& tensor, int peer, const CollectiveOptions& options) {
  return WaitFor(RecvImpl(tensor, peer, options, /*blocking=*/true));
}

}  // namespace usine
