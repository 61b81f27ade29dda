#include "collectives/nccl/nccl_comm.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "runtime/core/internal/cuda_device_guard.h"
#include "runtime/core/logging.h"
#include "runtime/core/nccl_status.h"
#include "runtime/core/status_macros.h"

namespace usine::collectives_internal {
namespace {

// Between two polls of a call in progress.
constexpr auto kPollInterval = std::chrono::microseconds(50);
// How long finalising a communicator may take before it is aborted instead.
constexpr absl::Duration kFinalizeTimeout = absl::Seconds(30);
// How long the watchdog waits for ncclCommAbort before ending the process all the same.
constexpr absl::Duration kAbortGrace = absl::Seconds(10);

ncclConfig_t NonBlockingConfig() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

// The state of `comm`: ncclInProgress while a call is still being carried out, ncclSuccess,
// or the error that broke it.
ncclResult_t AsyncState(ncclComm_t comm) {
  ncclResult_t state = ncclSuccess;
  const ncclResult_t result = ncclCommGetAsyncError(comm, &state);
  return result != ncclSuccess ? result : state;
}

// Calls `state` until it reports something other than ncclInProgress, or `deadline` passes
// (then returns ncclInProgress).
ncclResult_t PollWhileInProgress(absl::FunctionRef<ncclResult_t()> state, absl::Time deadline) {
  while (true) {
    const ncclResult_t result = state();
    if (result != ncclInProgress || absl::Now() >= deadline) return result;
    std::this_thread::sleep_for(kPollInterval);
  }
}

// The status of a call whose outcome is `result` (not ncclSuccess) on `comm`.
absl::Status CallError(ncclResult_t result, const char* op_name, ncclComm_t comm,
                       absl::string_view call) {
  if (result == ncclInProgress) {
    return absl::DeadlineExceededError(
        absl::StrCat(call, ": ", op_name, " was still in progress at the call's deadline"));
  }
  return WithContext(NcclStatus(result, op_name, __FILE__, __LINE__, comm), call);
}

// Waits for a communicator that nobody else knows yet (just created) to be ready; on failure
// aborts it, which frees it.
absl::Status AwaitNew(ncclComm_t comm, ncclResult_t started, const char* op_name,
                      absl::string_view what, absl::Time deadline) {
  ncclResult_t result = started;
  if (result == ncclInProgress) {
    result = PollWhileInProgress([comm] { return AsyncState(comm); }, deadline);
  }
  if (result == ncclSuccess) return absl::OkStatus();
  absl::Status status = CallError(result, op_name, comm, what);
  ncclCommAbort(comm);
  return status;
}

}  // namespace

NcclComm::NcclComm(ncclComm_t comm, int rank, int size, Device device,
                   std::unique_ptr<MpiArrivalProbe> reports)
    : rank_(rank), size_(size), device_(device), reports_(std::move(reports)), comm_(comm) {}

absl::StatusOr<std::shared_ptr<NcclComm>> NcclComm::Init(const ncclUniqueId& id, int rank, int size,
                                                         Device device,
                                                         std::unique_ptr<MpiArrivalProbe> reports,
                                                         absl::Time deadline,
                                                         absl::string_view what) {
  core_internal::CudaDeviceGuard guard;  // NCCL binds the communicator to the current device.
  RETURN_IF_ERROR(WithContext(guard.Enter(device), what));
  ncclConfig_t config = NonBlockingConfig();  // NCCL copies it before returning.
  ncclComm_t comm = nullptr;
  const ncclResult_t started = ncclCommInitRankConfig(&comm, size, id, rank, &config);
  if (started != ncclSuccess && started != ncclInProgress) {
    // Failed before NCCL took the communicator in charge: `comm` may already be freed.
    return CallError(started, "ncclCommInitRankConfig", nullptr, what);
  }
  RETURN_IF_ERROR(AwaitNew(comm, started, "ncclCommInitRankConfig", what, deadline));
  return std::shared_ptr<NcclComm>(new NcclComm(comm, rank, size, device, std::move(reports)));
}

absl::StatusOr<std::shared_ptr<NcclComm>> NcclComm::Split(int color, int key,
                                                          std::unique_ptr<MpiArrivalProbe> reports,
                                                          absl::Time deadline,
                                                          absl::string_view what) {
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(WithContext(guard.Enter(device_), what));
  ncclConfig_t config = NonBlockingConfig();
  // NCCL writes `child` from its own thread when the split is done; Enqueue returns only
  // once that thread has been joined (or, on failure, once ncclCommAbort has joined it).
  ncclComm_t child = nullptr;
  // On a non-blocking communicator NCCL 2.28's ncclCommSplit returns ncclSuccess while the
  // split still runs (the parent's state says ncclInProgress; the child is written only at the
  // end, which the first query of a finished state joins): so its success means "in progress"
  // and Enqueue polls the parent until the split is over.
  const absl::Status split = Enqueue(
      [&](ncclComm_t comm) {
        const ncclResult_t started = ncclCommSplit(comm, color, key, &child, &config);
        return started == ncclSuccess ? ncclInProgress : started;
      },
      "ncclCommSplit", what, deadline);
  // A child whose set-up failed is left alone: it may still refer to the parent, which the
  // failure has aborted.
  if (!split.ok()) return split;
  if (child == nullptr) {
    return absl::InternalError(absl::StrCat(what, ": ncclCommSplit made no communicator"));
  }
  RETURN_IF_ERROR(AwaitNew(child, AsyncState(child), "ncclCommSplit", what, deadline));
  int rank = 0, size = 0;
  ncclResult_t result = ncclCommUserRank(child, &rank);
  if (result == ncclSuccess) result = ncclCommCount(child, &size);
  if (result != ncclSuccess) {
    absl::Status status = CallError(result, "ncclCommUserRank/ncclCommCount", child, what);
    ncclCommAbort(child);
    return status;
  }
  return std::shared_ptr<NcclComm>(new NcclComm(child, rank, size, device_, std::move(reports)));
}

NcclComm::~NcclComm() {
  std::lock_guard<std::mutex> lock(mu_);
  if (comm_ == nullptr) return;
  core_internal::CudaDeviceGuard guard;
  guard.Enter(device_).IgnoreError();  // Without the device, NCCL reports the failure below.
  ncclComm_t comm = comm_;
  ncclResult_t result = ncclCommFinalize(comm);
  if (result == ncclInProgress) {
    result =
        PollWhileInProgress([comm] { return AsyncState(comm); }, absl::Now() + kFinalizeTimeout);
  }
  if (result == ncclSuccess) {
    ncclCommDestroy(comm);
    return;
  }
  USINE_LOG(WARNING) << "NCCL communicator of rank " << rank_ << " of " << size_
                     << " could not be finalised (" << ncclGetErrorString(result)
                     << "); aborting it";
  ncclCommAbort(comm);
}

std::vector<std::optional<std::string>> NcclComm::Probe::ExchangeReports(const std::string& report,
                                                                         absl::Duration grace) {
  return comm_->reports_->ExchangeReports(report, grace);
}

void NcclComm::Probe::Abort(int exit_code) {
  // NCCL never gives up on a stuck call by itself: abort it first, so that its kernels and
  // proxy threads stop. A thread bounds the wait, for ncclCommAbort may hang as well.
  auto aborted = std::make_shared<std::atomic<bool>>(false);
  std::thread([comm = comm_, aborted] {
    comm->Abort(absl::DeadlineExceededError("the watchdog ended the process"));
    aborted->store(true);
  }).detach();
  const absl::Time give_up = absl::Now() + kAbortGrace;
  while (!aborted->load() && absl::Now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  comm_->reports_->Abort(exit_code);
}

absl::Status NcclComm::Enqueue(absl::FunctionRef<ncclResult_t(ncclComm_t)> op, const char* op_name,
                               absl::string_view call, absl::Time deadline) {
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(WithContext(guard.Enter(device_), call));
  ncclResult_t result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (comm_ == nullptr) return AbortedError(call);
    result = op(comm_);
  }
  if (result == ncclInProgress) {
    result = PollWhileInProgress(
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          // Aborted meanwhile (by a Work or the watchdog): stop polling; reported below.
          return comm_ == nullptr ? ncclInvalidUsage : AsyncState(comm_);
        },
        deadline);
  }
  if (result == ncclSuccess) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  if (comm_ == nullptr) return AbortedError(call);
  const absl::Status status = CallError(result, op_name, comm_, call);
  AbortLocked(status);
  return status;
}

absl::Status NcclComm::Check(absl::string_view call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (comm_ == nullptr) return AbortedError(call);
  const ncclResult_t state = AsyncState(comm_);
  if (state == ncclSuccess || state == ncclInProgress) return absl::OkStatus();
  const absl::Status status = CallError(state, "ncclCommGetAsyncError", comm_, call);
  AbortLocked(status);
  return status;
}

void NcclComm::Abort(const absl::Status& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  AbortLocked(reason);
}

void NcclComm::AbortLocked(const absl::Status& reason) {
  if (comm_ == nullptr) return;
  abort_reason_ = reason;
  core_internal::CudaDeviceGuard guard;
  guard.Enter(device_).IgnoreError();  // ncclCommAbort selects the device itself.
  ncclCommAbort(std::exchange(comm_, nullptr));
}

absl::Status NcclComm::AbortedError(absl::string_view call) const {
  return absl::FailedPreconditionError(absl::StrCat(
      call, ": the NCCL communicator was aborted after an error: ", abort_reason_.message()));
}

}  // namespace usine::collectives_internal
