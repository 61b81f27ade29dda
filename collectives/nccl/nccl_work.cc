#include "collectives/nccl/nccl_work.h"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "collectives/watchdog.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"

namespace usine::collectives_internal {
namespace {

// Wait() polls back to back for kSpinTime (most calls of a training step end within it),
// then sleeps between polls so as not to take a core from the host threads feeding the GPU.
// The spin is timed, not counted: a sleep of 50 us lasts 50-100 us (the timer slack), which
// doubled the wait for a call of 100 us when the spin was 100 polls (measured on an H100).
constexpr auto kSpinTime = std::chrono::milliseconds(2);
constexpr auto kPollInterval = std::chrono::microseconds(50);
// How long a failed call's Work, destroyed, waits for its kernels to quit (the communicator is
// aborted) before it leaks the call's tensors rather than hand them back to the allocator.
constexpr absl::Duration kQuitGrace = absl::Seconds(5);

// Thread-safe: Wait and Test may be called from any thread.
class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclComm> comm, std::shared_ptr<const Event> done,
           std::vector<Tensor> keep_alive, Watchdog::Token token, std::string description);
  // Waits for the call; after a failure, for its tensors' release (ReleaseTensorsLocked), up to
  // kQuitGrace, then leaks them.
  ~NcclWork() override;

  absl::Status Wait() override;
  absl::StatusOr<bool> Test() override;

 private:
  // Whether the event has completed (Event::IsComplete makes its device current).
  absl::StatusOr<bool> EventCompleted() const;
  // Drops keep_alive_ once the call is over, and says whether it is gone. After a failure the
  // communicator is aborted and its kernels quit, but may still be running: the tensors go
  // once the call's event has completed (one query here; Test asks again, the destructor polls).
  bool ReleaseTensorsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Declared first so that it outlives token_, whose probe it owns.
  const std::shared_ptr<NcclComm> comm_;
  const std::string description_;
  // Recorded after the call before this Work was made; only queried since, which any thread
  // may do (the watchdog's too: shared with a completion test).
  const std::shared_ptr<const Event> done_;
  std::mutex mu_;
  std::vector<Tensor> keep_alive_ ABSL_GUARDED_BY(mu_);       // Cleared once the call is over.
  Watchdog::Token token_ ABSL_GUARDED_BY(mu_);                // Released once the call is over.
  std::optional<absl::Status> outcome_ ABSL_GUARDED_BY(mu_);  // Set once the call is over.
};

NcclWork::NcclWork(std::shared_ptr<NcclComm> comm, std::shared_ptr<const Event> done,
                   std::vector<Tensor> keep_alive, Watchdog::Token token, std::string description)
    : comm_(std::move(comm)),
      description_(std::move(description)),
      done_(std::move(done)),
      keep_alive_(std::move(keep_alive)),
      token_(std::move(token)) {}

// The completion test of a call nobody waits on (Watchdog::SetCompletionTest): over once its
// event has completed; or at once when NCCL reports an error, which Check answers by aborting
// the communicator, so that its kernels quit and the host's next synchronisation returns
// (the error, logged here, then fails the communicator's next call). Owns what it reads.
std::function<bool()> UnwaitedCallTest(std::weak_ptr<NcclComm> comm,
                                       std::shared_ptr<const Event> done, std::string description) {
  return [comm = std::move(comm), done = std::move(done), description = std::move(description)] {
    const std::shared_ptr<NcclComm> alive = comm.lock();
    if (alive == nullptr) return true;  // Its Works are gone, so is the call.
    if (absl::Status nccl = alive->Check(description); !nccl.ok()) {
      USINE_LOG(ERROR) << nccl;
      return true;
    }
    const absl::StatusOr<bool> completed = done->IsComplete();
    if (!completed.ok()) USINE_LOG(ERROR) << WithContext(completed.status(), description);
    return !completed.ok() || *completed;
  };
}

absl::Status NcclWork::Wait() {
  const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
  while (true) {
    ASSIGN_OR_RETURN(const bool done, Test());
    if (done) return absl::OkStatus();
    if (std::chrono::steady_clock::now() >= spin_until) std::this_thread::sleep_for(kPollInterval);
  }
}

absl::StatusOr<bool> NcclWork::Test() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!outcome_.has_value()) {
    // NCCL's error first: a call that failed may still complete its event (NCCL's kernels
    // quit when the communicator is aborted).
    absl::Status status = comm_->Check(description_);
    if (status.ok()) {
      absl::StatusOr<bool> completed = EventCompleted();
      if (completed.ok() && !*completed) return false;
      status = completed.status();
    }
    outcome_ = status;
    token_.Release();
  }
  ReleaseTensorsLocked();
  if (!outcome_->ok()) return *outcome_;
  return true;
}

bool NcclWork::ReleaseTensorsLocked() {
  if (keep_alive_.empty()) return true;
  if (!outcome_->ok()) {
    const absl::StatusOr<bool> completed = EventCompleted();
    if (!completed.ok() || !*completed) return false;
  }
  keep_alive_.clear();
  return true;
}

NcclWork::~NcclWork() {
  Wait().IgnoreError();
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time give_up = absl::Now() + kQuitGrace;
  while (!ReleaseTensorsLocked()) {
    if (absl::Now() >= give_up) {
      USINE_LOG(ERROR) << description_
                       << ": failed, and its kernels did not quit; leaking its tensors, which "
                          "they may still write";
      static std::mutex leaked_mu;
      static std::vector<Tensor>* const leaked = new std::vector<Tensor>;  // Never freed.
      std::lock_guard<std::mutex> leak_lock(leaked_mu);
      for (Tensor& tensor : keep_alive_) leaked->push_back(std::move(tensor));
      keep_alive_.clear();
      return;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

absl::StatusOr<bool> NcclWork::EventCompleted() const {
  absl::StatusOr<bool> completed = done_->IsComplete();  // cudaEventQuery; clears NotReady.
  if (!completed.ok()) return WithContext(completed.status(), description_);
  return completed;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Work>> LaunchNcclCall(
    std::shared_ptr<NcclComm> comm, const Stream& stream, std::string description,
    absl::Duration timeout, std::vector<Tensor> keep_alive, bool unwaited, const char* op_name,
    absl::FunctionRef<ncclResult_t(ncclComm_t, cudaStream_t)> op) {
  Watchdog::Token token = Watchdog::Get().Track(description, timeout, comm->probe());
  const absl::Time deadline = absl::Now() + timeout;
  // Created before the call, so that a failure here leaves nothing in flight.
  absl::StatusOr<Event> created = Event::Create(comm->device());
  if (!created.ok()) return WithContext(created.status(), description);
  const auto done = std::make_shared<Event>(*std::move(created));
  const cudaStream_t handle = stream.handle();
  RETURN_IF_ERROR(
      comm->Enqueue([&](ncclComm_t c) { return op(c, handle); }, op_name, description, deadline));
  if (absl::Status recorded = done->Record(stream); !recorded.ok()) {
    // The call is in flight with nothing to tell when it ends: stop it, so that the caller
    // may free its tensors.
    recorded = WithContext(recorded, description);
    comm->Abort(recorded);
    return recorded;
  }
  if (unwaited) {
    Watchdog::Get().SetCompletionTest(token, UnwaitedCallTest(comm, done, description));
  }
  return std::make_unique<NcclWork>(std::move(comm), done, std::move(keep_alive), std::move(token),
                                    std::move(description));
}

}  // namespace usine::collectives_internal
