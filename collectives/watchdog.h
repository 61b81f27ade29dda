// The watchdog: nothing waits forever. Every call a backend runs is tracked with a deadline;
// one thread watches them all. When a call passes its deadline the watchdog
//   1. asks the communicator's ranks, over a channel apart from the stuck one (ArrivalProbe),
//      which call each of them is waiting in, allowing a short grace for late timers;
//   2. prints one line naming the call (operation, communicator, sequence number, rank), the
//      ranks that did not arrive, and what the others reported;
//   3. ends the process (and, through MPI_Abort, the job) with kCollectiveTimeoutExitCode:
//      a collective blocked in MPI or NCCL cannot be cancelled, so the process cannot go on.
// When a stop signal arrives (runtime/core/stop_signal.h) while a call has been waiting for
// more than kStopSignalPatience -- typically the launcher tearing the job down because a rank
// died -- it runs steps 1 and 2 at once, with a short grace, so that the cause is printed
// before the launcher's SIGKILL; it does not end the process, which may still checkpoint.
//
//   Watchdog::Token token = Watchdog::Get().Track(call_description, timeout, probe);
//   ... blocking MPI call ...
//   // token goes out of scope: the call is no longer tracked.
//
// Thread-safe.
#ifndef USINE_COLLECTIVES_WATCHDOG_H_
#define USINE_COLLECTIVES_WATCHDOG_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace usine {

// Exit status of a process ended by the watchdog (as timeout(1) uses).
inline constexpr int kCollectiveTimeoutExitCode = 124;

// How long a call may wait after a stop signal before the watchdog explains it, and the
// grace it then allows for the reports (short: the launcher's SIGKILL follows its SIGTERM).
inline constexpr absl::Duration kStopSignalPatience = absl::Milliseconds(200);
inline constexpr absl::Duration kStopSignalGrace = absl::Milliseconds(500);

// Finds out where the ranks of one communicator are, without using the communicator itself.
class ArrivalProbe {
 public:
  virtual ~ArrivalProbe() = default;
  // Sends `report` (this rank's stuck call) to every other rank and collects theirs for up
  // to `grace`. Returns one entry per rank of the communicator (this rank's is `report`);
  // empty where no report came.
  virtual std::vector<std::optional<std::string>> ExchangeReports(const std::string& report,
                                                                  absl::Duration grace) = 0;
  // Ends this process and its job. Does not return.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

class Watchdog {
 public:
  // What happens once a call is known to be stuck. Default: print `message` to stderr,
  // wait a second (so that the other ranks print theirs), then probe->Abort(exit code).
  using ExpiryAction = std::function<void(const std::string& message, ArrivalProbe* probe)>;

  // Removes its call from the watch list when destroyed.
  class Token {
   public:
    Token() = default;
    Token(Token&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
    Token& operator=(Token&& other) noexcept;
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    ~Token() { Release(); }
    void Release();

   private:
    friend class Watchdog;
    explicit Token(uint64_t id) : id_(id) {}
    uint64_t id_ = 0;
  };

  static Watchdog& Get();

  // Watches a call from now until the token is released. `description` names it ("allreduce
  // #17 on communicator 'dp' (rank 1 of 2)"); `probe` (which must outlive the token) finds
  // the missing ranks; nullptr skips that step.
  [[nodiscard]] Token Track(std::string description, absl::Duration timeout, ArrivalProbe* probe);

  // Gives the call of `token` a test of whether it is over, for a call that ends without
  // anyone waiting on it, so without releasing its token (an NCCL call enqueued on a stream
  // that nobody waits on): the watchdog runs the test at each of its wakes (at most
  // kPollInterval apart, 100 ms) and before the call's deadline expires, and drops the call
  // from the watch once it says true. It runs on the watchdog's thread without the watchdog's
  // lock, possibly after the token is released: it must own what it reads, and must not call
  // the watchdog. A released token is ignored.
  void SetCompletionTest(const Token& token, std::function<bool()> completed);

  // Grace for the report exchange. Default: 3 s.
  void set_report_grace(absl::Duration grace);
  // Test seam: replaces what happens at expiry (see ExpiryAction).
  void set_expiry_action(ExpiryAction action);
  // Restores the default expiry action.
  void ResetExpiryAction();

  // "watchdog: <description> <what_happened>; rank(s) 1 did not arrive ...; reports: ...",
  // from the reports of its ranks (exposed for tests).
  static std::string ExpiryMessage(const std::string& description, const std::string& what_happened,
                                   const std::vector<std::optional<std::string>>& reports,
                                   absl::Duration grace);

 private:
  struct Entry {
    std::string description;
    absl::Duration timeout;
    absl::Time start;
    absl::Time deadline;
    ArrivalProbe* probe;
    std::function<bool()> completed;  // May be empty (SetCompletionTest).
  };
  // Runs the entries' completion tests with mu_ released, and drops those that say true.
  void PollCompletionTestsLocked(std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Prints where the ranks are for the longest-waiting call, once per process, when a stop
  // signal has arrived. Called with mu_ held; releases it while exchanging reports.
  void ExplainStopLocked(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Watchdog();
  void Run();
  void Remove(uint64_t id);

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Duration grace_ ABSL_GUARDED_BY(mu_) = absl::Seconds(3);
  ExpiryAction action_ ABSL_GUARDED_BY(mu_);
  bool stop_explained_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_wake_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // The thread's next wake.
  std::thread thread_;  // Runs for the life of the process.
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_WATCHDOG_H_
