// The NCCL backend of Communicator, for CUDA tensors on one device per rank.
//
//   ASSIGN_OR_RETURN(auto mpi_world, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
//   ASSIGN_OR_RETURN(auto world, NcclCommunicator::Create(mpi_world.get(), Device::Cuda(local),
//                                                         "world"));
//   RETURN_IF_ERROR(world->AllReduce(grads, ReduceOp::kAvg));  // in place, on world->stream()
//   RETURN_IF_ERROR(AgreeOnStatus(*world, status));             // host bytes, over MPI
//
// How it runs:
// - Bootstrap: rank 0 of the MPI communicator makes the NCCL unique id and broadcasts it over
//   MPI; every rank then joins a non-blocking NCCL communicator (ncclConfig_t::blocking = 0),
//   so that no NCCL call blocks the host: a call that NCCL is still carrying out is polled,
//   bounded by its deadline. Without an MPI communicator (nullptr) the world is this process
//   alone, and no MPI is needed.
// - Each call is enqueued on a CUDA stream: CollectiveOptions::stream, or this communicator's
//   own non-blocking stream (stream()). It is ordered after the work enqueued there before it
//   and before the work enqueued after it; the caller orders that stream after the producers
//   of the inputs (Stream::WaitFor). The call returns once NCCL has enqueued the operation (the
//   first call that needs a connection between some ranks may wait there until those ranks
//   have made theirs), not once it has run: its Work's Wait() blocks the host until the device
//   has finished it, and the synchronous forms (AllReduce, ...) do so before returning --
//   except with CollectiveOptions::stream_ordered, where they return at once and the
//   communicator holds the call's Work (its tensors) until a later call finds it has run, or
//   until the communicator is destroyed, which waits for it and logs its error. Meanwhile the
//   watchdog polls it (about every 100 ms): it leaves the watch once it has run, and an error
//   NCCL reports aborts the communicator at once (so that the host's synchronisations return)
//   and fails the next call.
// - In place, with no copy, as NCCL does it: AllReduce when send and recv are the same memory,
//   ReduceScatter when recv is chunk rank() of send, AllGather when send is chunk rank() of
//   recv, Broadcast always. Other overlaps of send and recv are rejected.
// - Reductions are NCCL's, in the element type: bf16 and f16 results may differ in the last
//   bits from the MPI backend's (which reduces in f32 and rounds once). kAvg is ncclAvg.
//   Broadcast, AllGather, Send and Recv move bytes. A call on no elements completes at once,
//   without NCCL (Barrier excepted).
// - Host tensors go to host() (communicator.h): the MPI bootstrap, or in a world of one a
//   LocalCommunicator of this communicator's own. They are that communicator's calls, with its
//   sequence numbers and its watch, never NCCL's, and are not ordered with the streams.
// - Send and Recv are ncclSend and ncclRecv, one at a time (never grouped): a Send waits for
//   its matching Recv (on the device, and at first use while NCCL connects the pair). Two
//   ranks that exchange must issue the pair in opposite orders (e.g. the lower rank sends
//   first), as with blocking MPI calls.
// - Every call is watched (collectives/watchdog.h). NCCL never gives up on a stuck call, so
//   at expiry the NCCL communicator is aborted before the job; the missing ranks are found
//   over a duplicate of the MPI communicator reserved for that (none in a world of one).
// - An NCCL error in any call aborts the NCCL communicator (NCCL cannot use it again): that
//   call's Work reports the error, and every later call fails, naming it.
//
// Thread-safety: as Communicator (one issuing thread at a time; Works from any thread).
// Lifetime: the NCCL communicator lives until this object and every Work of it are gone, then
// is finalised (aborted instead where that fails or takes over 30 s).
#ifndef USINE_COLLECTIVES_NCCL_NCCL_COMMUNICATOR_H_
#define USINE_COLLECTIVES_NCCL_NCCL_COMMUNICATOR_H_

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"

#include "collectives/communicator.h"
#include "collectives/local/local_communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

namespace collectives_internal {
class NcclComm;
}  // namespace collectives_internal

class NcclCommunicator final : public Communicator {
 public:
  // A communicator over the ranks of `bootstrap` (a collective over it, and on rank r of it
  // the NCCL rank r), on `device`; nullptr `bootstrap` makes a world of one. `bootstrap` must
  // outlive the result (Split uses it), and has no call of its own in flight meanwhile; each
  // rank passes its own device. Fails, with nothing left behind, where NCCL cannot set the
  // communicator up by `options.timeout`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(
      MpiCommunicator* bootstrap, Device device, std::string name,
      CommunicatorOptions options = {});
  ~NcclCommunicator() override;

  absl::string_view backend() const override { return "nccl"; }
  // Where calls without CollectiveOptions::stream are enqueued: a non-blocking stream of
  // device(), owned by this communicator.
  const Stream& stream() const { return stream_; }

 protected:
  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(const Call& call, const Tensor& send,
                                                       const Tensor& recv, ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<Work>> StartReduceScatter(const Call& call, const Tensor& send,
                                                           const Tensor& recv,
                                                           ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<Work>> StartAllGather(const Call& call, const Tensor& send,
                                                       const Tensor& recv) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(const Call& call, const Tensor& tensor,
                                                       int root) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBarrier(const Call& call) override;
  absl::StatusOr<std::unique_ptr<Work>> StartSend(const Call& call, const Tensor& tensor,
                                                  int peer) override;
  absl::StatusOr<std::unique_ptr<Work>> StartRecv(const Call& call, const Tensor& tensor,
                                                  int peer) override;
  Communicator* HostTwin() const override;
  // ncclCommSplit, with a matching split of the MPI bootstrap (a collective over it too),
  // which the new communicator owns, so that it can be split in turn.
  absl::StatusOr<std::unique_ptr<Communicator>> DoSplit(const Call& call, int color, int key,
                                                        std::string name) override;

 private:
  NcclCommunicator(std::shared_ptr<collectives_internal::NcclComm> comm, MpiCommunicator* bootstrap,
                   std::unique_ptr<MpiCommunicator> owned_bootstrap, Stream stream, Tensor barrier,
                   std::string name, CommunicatorOptions options);

  // The communicator around `comm`, with its stream and barrier buffer.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Assemble(
      std::shared_ptr<collectives_internal::NcclComm> comm, MpiCommunicator* bootstrap,
      std::unique_ptr<MpiCommunicator> owned_bootstrap, std::string name,
      CommunicatorOptions options);
  // The stream `call` runs on; an error if it is not a stream of device().
  absl::StatusOr<const Stream*> StreamFor(const Call& call) const;
  // Before `call` launches: drops the stream-ordered calls that have run from in_flight_, and
  // returns the error of the first that failed (NCCL's or CUDA's), as `call`'s.
  absl::Status ReapInFlight(const Call& call);
  // What the caller of a launched call gets: `work` itself, or for a stream-ordered call a
  // completed Work, `work` going to in_flight_.
  absl::StatusOr<std::unique_ptr<Work>> Park(const Call& call,
                                             absl::StatusOr<std::unique_ptr<Work>> work);

  std::shared_ptr<collectives_internal::NcclComm> comm_;
  MpiCommunicator* bootstrap_;                        // nullptr in a world of one.
  std::unique_ptr<MpiCommunicator> owned_bootstrap_;  // The bootstrap of a split, else null.
  std::unique_ptr<LocalCommunicator> local_host_;     // host() in a world of one, else null.
  Stream stream_;
  Tensor barrier_;  // One int32 on device(), all-reduced by Barrier.
  std::mutex in_flight_mu_;
  // The stream-ordered calls not known to have run, oldest first; the destructor waits for
  // them and logs their errors.
  std::deque<std::unique_ptr<Work>> in_flight_ ABSL_GUARDED_BY(in_flight_mu_);
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_NCCL_NCCL_COMMUNICATOR_H_
