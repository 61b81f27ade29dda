// Collective communication among the ranks of a group: the one interface that every
// distributed piece of usine (gradient reduction, tensor-parallel layers, checkpoints) uses,
// with a backend per transport: mpi/ (host tensors), nccl/ (CUDA tensors) and local/ (a
// world of one).
//
//   RETURN_IF_ERROR(comm.AllReduce(grads, ReduceOp::kAvg));           // in place, blocking
//   ASSIGN_OR_RETURN(auto work, comm.AllGatherAsync(shard, full));    // overlaps the caller
//   ...
//   RETURN_IF_ERROR(work->Wait());
//
// Contract for every collective (all but Send/Recv):
// - Every rank of the communicator calls it, in the same order, with matching arguments
//   (dtype, element counts, op, root); calls on one communicator are issued by one thread
//   at a time. Each call gets the next sequence number of the communicator (from 1); error
//   messages name it.
// - It synchronises the ranks: it completes on a rank only once every rank has called it
//   (Broadcast: once the root has; Barrier: once all have).
// - Nothing hangs: a call that has not completed by its deadline (CollectiveOptions::timeout,
//   default CommunicatorOptions::timeout, 600 s) makes the process exit with
//   kCollectiveTimeoutExitCode after printing the operation, the communicator, the sequence
//   number and the ranks that did not arrive (collectives/watchdog.h). A blocked collective
//   cannot be cancelled portably in MPI or NCCL, so the process does not carry on.
// - Tensors are contiguous; host tensors for mpi/ and local/; for nccl/, tensors on the
//   communicator's device, which go over NCCL, or host tensors, which it hands to host(), its
//   twin over the same ranks (as a PyTorch process group with a cpu and a cuda backend), so
//   that one communicator carries both a job's model tensors and its host-side agreements. A
//   call's tensors are all on one device. Reductions take f32, bf16, f16, i32, i64;
//   AllGather, Broadcast, Send and Recv move bytes and take any dtype.
//   Asynchronous calls keep their tensors alive until done; the caller must not write them
//   (nor read outputs) before Wait() or Test() reports completion.
// - CUDA tensors (nccl/): the collective is enqueued on `CollectiveOptions::stream` (default:
//   the communicator's stream) and ordered with other work there; Wait() blocks the host
//   until it has finished. A synchronous call with `CollectiveOptions::stream_ordered`
//   returns once enqueued instead, as a kernel launch does: the work enqueued on that stream
//   after it sees its result, and the host once it has synchronised with that stream.
//
// Thread-safety: a Communicator may be used from several threads, one call at a time
// (see above); Work objects may be waited on from any thread.
#ifndef USINE_COLLECTIVES_COMMUNICATOR_H_
#define USINE_COLLECTIVES_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "runtime/core/device.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

// "sum", "avg", "max", "min".
absl::string_view ReduceOpName(ReduceOp op);

// The kinds of operations, for messages and statistics.
enum class CollectiveKind {
  kAllReduce,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kBarrier,
  kSend,
  kRecv,
  kSplit
};
absl::string_view CollectiveKindName(CollectiveKind kind);

struct CommunicatorOptions {
  // Deadline of every call that does not set its own. Default: 600 s.
  absl::Duration timeout = absl::Seconds(600);
};

struct CollectiveOptions {
  // Deadline of this call; zero means the communicator's. Default: zero.
  absl::Duration timeout = absl::ZeroDuration();
  // nccl/: the CUDA stream to enqueue on; nullptr means the communicator's. Ignored by the
  // host backends. Default: nullptr.
  const Stream* stream = nullptr;
  // nccl/, the synchronous forms: return once the call is enqueued on its stream, not once it
  // has run (the tensor-parallel layers' all-reduces, between kernels on one stream). The
  // communicator keeps the call's tensors alive until a later call on it finds the call has
  // run (or until it is destroyed), and the call watched until it has run; an error NCCL
  // reports for it fails a later call. Ignored by the asynchronous forms (their Work says when
  // the call has run) and by host tensors, which are complete on return. Default: false.
  bool stream_ordered = false;
};

// The handle of an asynchronous call.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the call has completed, and returns its status. Idempotent.
  [[nodiscard]] virtual absl::Status Wait() = 0;
  // True once the call has completed (successfully; an error is returned as such), false
  // while it is still running. Never blocks.
  [[nodiscard]] virtual absl::StatusOr<bool> Test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // "world", "dp", "tp", ... as given when created; used in messages.
  const std::string& name() const { return name_; }
  // Where its tensors live: the cpu for mpi/ and local/, a CUDA device for nccl/.
  Device device() const { return device_; }
  // The transport: "mpi", "nccl" or "local".
  virtual absl::string_view backend() const = 0;
  // The communicator of the same ranks (same rank() and size()) for host tensors: this one
  // for mpi/ and local/; for nccl/, the twin it hands its host tensors to (its MPI bootstrap,
  // split along with it; a local communicator in a world of one). For those who need a host
  // transport by type, such as MPI-IO.
  Communicator& host() { return HostTwin() != nullptr ? *HostTwin() : *this; }
  absl::Duration default_timeout() const { return options_.timeout; }

  // recv[i] <- op over all ranks of send[i]. Same dtype and element count. In place when
  // send and recv are the same memory. kAvg divides the sum by size() (floating dtypes only).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> AllReduceAsync(
      const Tensor& send, const Tensor& recv, ReduceOp op, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status AllReduce(const Tensor& send, const Tensor& recv, ReduceOp op,
                                       const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status AllReduce(const Tensor& tensor, ReduceOp op,
                                       const CollectiveOptions& options = {});

  // send holds size() chunks of recv.numel() elements; recv <- op over all ranks of chunk
  // rank() of send. In place when recv is chunk rank() of send (recv == send + rank * n).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> ReduceScatterAsync(
      const Tensor& send, const Tensor& recv, ReduceOp op, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status ReduceScatter(const Tensor& send, const Tensor& recv, ReduceOp op,
                                           const CollectiveOptions& options = {});

  // recv holds size() chunks of send.numel() elements; chunk r <- send of rank r. In place
  // when send is chunk rank() of recv.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> AllGatherAsync(
      const Tensor& send, const Tensor& recv, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status AllGather(const Tensor& send, const Tensor& recv,
                                       const CollectiveOptions& options = {});

  // tensor <- tensor of rank `root`, on every rank. In place by nature.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> BroadcastAsync(
      const Tensor& tensor, int root, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status Broadcast(const Tensor& tensor, int root,
                                       const CollectiveOptions& options = {});

  // Completes once every rank has called it.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> BarrierAsync(
      const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status Barrier(const CollectiveOptions& options = {});

  // Point to point, matched in order per (peer, direction); not collectives: only the two
  // ranks take part. Completes when the message has been handed over (Send) or received.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> SendAsync(
      const Tensor& tensor, int peer, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status Send(const Tensor& tensor, int peer,
                                  const CollectiveOptions& options = {});
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> RecvAsync(
      const Tensor& tensor, int peer, const CollectiveOptions& options = {});
  [[nodiscard]] absl::Status Recv(const Tensor& tensor, int peer,
                                  const CollectiveOptions& options = {});

  // A collective: ranks that pass the same `color` (>= 0) form a new communicator, ordered
  // by (key, rank). The caller owns the result.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key,
                                                                    std::string name);

 protected:
  Communicator(int rank, int size, std::string name, Device device, CommunicatorOptions options)
      : rank_(rank), size_(size), name_(std::move(name)), device_(device), options_(options) {}

  // What a backend is given for each call: the arguments, checked, plus its identity.
  struct Call {
    CollectiveKind kind;
    uint64_t sequence = 0;  // 0 for Send/Recv, which are not sequenced collectives.
    absl::Duration timeout;
    const Stream* stream = nullptr;
    // Set for the synchronous calls: the caller waits at once, so a backend may run the
    // call in the caller's thread and return a completed Work.
    bool blocking = false;
    // A synchronous call with CollectiveOptions::stream_ordered: a backend with streams
    // returns a completed Work once the call is enqueued, and follows the call itself.
    bool stream_ordered = false;
    // "allreduce #17 on communicator 'dp' (rank 1 of 2)".
    std::string Describe(const Communicator& comm) const;
  };

  virtual absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(const Call& call, const Tensor& send,
                                                               const Tensor& recv, ReduceOp op) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartReduceScatter(const Call& call,
                                                                   const Tensor& send,
                                                                   const Tensor& recv,
                                                                   ReduceOp op) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartAllGather(const Call& call, const Tensor& send,
                                                               const Tensor& recv) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(const Call& call,
                                                               const Tensor& tensor, int root) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartBarrier(const Call& call) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartSend(const Call& call, const Tensor& tensor,
                                                          int peer) = 0;
  virtual absl::StatusOr<std::unique_ptr<Work>> StartRecv(const Call& call, const Tensor& tensor,
                                                          int peer) = 0;
  virtual absl::StatusOr<std::unique_ptr<Communicator>> DoSplit(const Call& call, int color,
                                                                int key, std::string name) = 0;

  const CommunicatorOptions& options() const { return options_; }

  // A backend on a device that also takes host tensors returns where they go (host()): every
  // call whose tensors are on the cpu is that communicator's call instead (checked, sequenced
  // and watched there). Default: nullptr, no host tensors but on a cpu communicator.
  virtual Communicator* HostTwin() const { return nullptr; }

 private:
  Call NextCall(CollectiveKind kind, const CollectiveOptions& options, bool sequenced,
                bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> AllReduceImpl(const Tensor& send, const Tensor& recv,
                                                      ReduceOp op, const CollectiveOptions& options,
                                                      bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> ReduceScatterImpl(const Tensor& send, const Tensor& recv,
                                                          ReduceOp op,
                                                          const CollectiveOptions& options,
                                                          bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> AllGatherImpl(const Tensor& send, const Tensor& recv,
                                                      const CollectiveOptions& options,
                                                      bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> BroadcastImpl(const Tensor& tensor, int root,
                                                      const CollectiveOptions& options,
                                                      bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> BarrierImpl(const CollectiveOptions& options,
                                                    bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> SendImpl(const Tensor& tensor, int peer,
                                                 const CollectiveOptions& options, bool blocking);
  absl::StatusOr<std::unique_ptr<Work>> RecvImpl(const Tensor& tensor, int peer,
                                                 const CollectiveOptions& options, bool blocking);
  // HostTwin() when there is one and `t` is a host tensor, else nullptr.
  Communicator* TwinFor(const Tensor& t) const;
  absl::Status CheckTensor(const Tensor& t, absl::string_view what, bool any_dtype) const;

  const int rank_;
  const int size_;
  const std::string name_;
  const Device device_;
  const CommunicatorOptions options_;
  uint64_t next_sequence_ = 1;  // Calls are issued by one thread at a time.
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_COMMUNICATOR_H_
