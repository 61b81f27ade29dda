// Private to collectives/nccl/. One non-blocking NCCL communicator (ncclConfig_t::blocking = 0),
// shared by the NcclCommunicator that made it and by the Works of its calls, so that it lives
// until the last of them is gone.
//
// A non-blocking communicator answers every call at once, often with ncclInProgress: the call
// goes on in a thread of NCCL's, and nothing else may touch the communicator (nor, for a
// collective, its stream) until ncclCommGetAsyncError no longer reports ncclInProgress. This
// class does that polling, bounded by a deadline, and turns any NCCL error into an aborted
// communicator: NCCL leaves a non-blocking communicator in its error state after a failed call,
// so it cannot be used again.
//
//   ASSIGN_OR_RETURN(auto comm, NcclComm::Init(id, rank, size, device, std::move(reports),
//                                              deadline, what));
//   RETURN_IF_ERROR(comm->Enqueue([&](ncclComm_t c) { return ncclAllReduce(..., c, stream); },
//                                 "ncclAllReduce", description, deadline));
//
// Thread-safe: NCCL calls on the communicator are serialised by a mutex held only for the
// duration of each call, never while waiting, so that Abort() gets through from any thread.
#ifndef USINE_COLLECTIVES_NCCL_NCCL_COMM_H_
#define USINE_COLLECTIVES_NCCL_NCCL_COMM_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nccl.h>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "collectives/mpi/mpi_communicator.h"
#include "collectives/watchdog.h"
#include "runtime/core/device.h"

namespace usine::collectives_internal {

class NcclComm {
 public:
  // Rank `rank` of `size` of the NCCL communicator named by `id`, on `device`; waits until
  // NCCL has set it up or `deadline` has passed. `reports` (nullptr: none) is the MPI channel
  // that finds missing ranks for the watchdog. `what` names the creation in errors.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<NcclComm>> Init(
      const ncclUniqueId& id, int rank, int size, Device device,
      std::unique_ptr<MpiArrivalProbe> reports, absl::Time deadline, absl::string_view what);

  // ncclCommSplit of this communicator (a collective over it): ranks with the same `color`
  // (>= 0) form the new one, ordered by (key, rank).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<NcclComm>> Split(
      int color, int key, std::unique_ptr<MpiArrivalProbe> reports, absl::Time deadline,
      absl::string_view what);

  // Finalises and destroys the NCCL communicator (aborts it where that does not finish in
  // time); nothing when it was aborted.
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  Device device() const { return device_; }
  // For Watchdog::Track: reports over MPI, and aborts this communicator before the process
  // ends. nullptr without an MPI channel (a world of one).
  ArrivalProbe* probe() { return reports_ != nullptr ? &probe_ : nullptr; }

  // Runs `op`, one NCCL call on the communicator (made current on its device), and waits
  // until NCCL has taken it in: for a collective, until it is enqueued on its stream, so that
  // an event recorded there afterwards follows it. `op_name` names the NCCL function and
  // `call` the usine call in errors. An error or the deadline aborts the communicator.
  [[nodiscard]] absl::Status Enqueue(absl::FunctionRef<ncclResult_t(ncclComm_t)> op,
                                     const char* op_name, absl::string_view call,
                                     absl::Time deadline);

  // OK while the communicator is healthy (also while a call is being taken in); otherwise the
  // error, after which the communicator is aborted. Never blocks on NCCL.
  [[nodiscard]] absl::Status Check(absl::string_view call);

  // Aborts the communicator (ncclCommAbort): NCCL kernels still running on its behalf quit
  // and later calls fail with `reason`. Idempotent.
  void Abort(const absl::Status& reason);

 private:
  // Forwards report exchanges to the MPI channel; on expiry, aborts NCCL before the job.
  class Probe final : public ArrivalProbe {
   public:
    explicit Probe(NcclComm* comm) : comm_(comm) {}
    std::vector<std::optional<std::string>> ExchangeReports(const std::string& report,
                                                            absl::Duration grace) override;
    [[noreturn]] void Abort(int exit_code) override;

   private:
    NcclComm* comm_;
  };

  NcclComm(ncclComm_t comm, int rank, int size, Device device,
           std::unique_ptr<MpiArrivalProbe> reports);

  // Marks the communicator aborted with `reason`, then calls ncclCommAbort.
  void AbortLocked(const absl::Status& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The status of a call attempted after the communicator was aborted.
  absl::Status AbortedError(absl::string_view call) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int rank_;
  const int size_;
  const Device device_;
  std::unique_ptr<MpiArrivalProbe> reports_;
  Probe probe_{this};

  std::mutex mu_;
  ncclComm_t comm_ ABSL_GUARDED_BY(mu_);  // nullptr once aborted.
  absl::Status abort_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace usine::collectives_internal

#endif  // USINE_COLLECTIVES_NCCL_NCCL_COMM_H_
