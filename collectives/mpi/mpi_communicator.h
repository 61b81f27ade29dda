// The MPI backend of Communicator, for host tensors.
//
//   ASSIGN_OR_RETURN(auto world, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
//   RETURN_IF_ERROR(world->AllReduce(grads, ReduceOp::kAvg));
//
// How it runs:
// - Each call is made of blocking MPI collectives (Open MPI's tuned algorithms, measured
//   faster than its non-blocking ones up to 16 MiB; docs/BENCHMARKS.md). Reductions larger
//   than MpiOptions::chunk_bytes run as consecutive calls of at most that size (for a
//   reduce-scatter, piece p of every rank's chunk packed together): the elementwise result is
//   the same, and Open MPI 4.1's blocking reductions are up to 20x slower per byte above
//   16 MiB than below. Synchronous calls run in the caller's thread;
//   asynchronous ones on a worker thread of the communicator, in issue order, so that they
//   overlap the caller's work. Send/Recv post MPI_Isend/MPI_Irecv at once.
// - bf16 and f16 reductions are exact in this sense: the inputs are widened to f32, reduced
//   by MPI in f32 (every rank receives the same f32 result), and rounded once to the element
//   type (nearest even). kAvg divides the f32 sum by size() before that rounding; integer
//   sums, max and min are exact.
// - Every call is watched (collectives/watchdog.h); the missing ranks are found over a
//   duplicate of the communicator reserved for that.
// Requires MPI initialised with MPI_THREAD_MULTIPLE (World does so) and MPI_ERRORS_RETURN
// on the communicators it is given, so that MPI errors come back as statuses.
#ifndef USINE_COLLECTIVES_MPI_MPI_COMMUNICATOR_H_
#define USINE_COLLECTIVES_MPI_MPI_COMMUNICATOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <mpi.h>

#include "collectives/communicator.h"
#include "collectives/internal/serial_executor.h"
#include "collectives/watchdog.h"

namespace usine {

class MpiArrivalProbe;

struct MpiOptions {
  // All-reduces and reduce-scatters larger than this run in pieces of this size. Default: 8 MiB.
  int64_t chunk_bytes = int64_t{8} << 20;
};

class MpiCommunicator final : public Communicator {
 public:
  // A communicator over the ranks of `comm`, which is duplicated (a collective over `comm`);
  // the caller keeps ownership of `comm`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MpiCommunicator>> Create(
      MPI_Comm comm, std::string name, CommunicatorOptions options = {},
      MpiOptions mpi_options = {});
  // Finishes the asynchronous calls still queued, then frees its MPI communicators.
  ~MpiCommunicator() override;

  absl::string_view backend() const override { return "mpi"; }
  // The duplicate that carries this communicator's calls.
  MPI_Comm mpi_comm() const { return comm_; }

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
  absl::StatusOr<std::unique_ptr<Communicator>> DoSplit(const Call& call, int color, int key,
                                                        std::string name) override;

 private:
  MpiCommunicator(MPI_Comm comm, std::unique_ptr<MpiArrivalProbe> probe, int rank, int size,
                  std::string name, CommunicatorOptions options, MpiOptions mpi_options);
  // MPI_Allreduce of `count` elements in pieces of at most chunk_bytes.
  absl::Status ChunkedAllReduce(const void* send, void* recv, int64_t count, MPI_Datatype type,
                                MPI_Op op);
  // MPI_Reduce_scatter_block of `count` elements per rank, in calls of at most chunk_bytes.
  // REQUIRES: send and recv do not overlap.
  absl::Status ChunkedReduceScatter(const void* send, void* recv, int64_t count, MPI_Datatype type,
                                    MPI_Op op);

  // Runs `op` (blocking MPI calls) under the watchdog: in the caller's thread for a blocking
  // call, otherwise on the worker after the calls issued before it.
  std::unique_ptr<Work> Run(const Call& call, std::vector<Tensor> keep_alive,
                            std::function<absl::Status()> op);
  // Posts a point-to-point request and returns a Work that completes it.
  absl::StatusOr<std::unique_ptr<Work>> StartPointToPoint(const Call& call, const Tensor& tensor,
                                                          int peer, bool send);

  MPI_Comm comm_;
  const MpiOptions mpi_options_;
  std::unique_ptr<MpiArrivalProbe> probe_;
  std::unique_ptr<collectives_internal::SerialExecutor> executor_;
};

// Finds a stuck call's missing ranks by exchanging reports over its own MPI communicator.
class MpiArrivalProbe final : public ArrivalProbe {
 public:
  // Takes ownership of `comm` (a duplicate reserved for the exchange).
  explicit MpiArrivalProbe(MPI_Comm comm);
  ~MpiArrivalProbe() override;
  std::vector<std::optional<std::string>> ExchangeReports(const std::string& report,
                                                          absl::Duration grace) override;
  [[noreturn]] void Abort(int exit_code) override;

 private:
  MPI_Comm comm_;
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_MPI_MPI_COMMUNICATOR_H_
