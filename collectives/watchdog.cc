#include "collectives/watchdog.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

#include "runtime/core/logging.h"
#include "runtime/core/stop_signal.h"

namespace usine {
namespace {

// The watchdog thread's longest sleep.
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);

void DefaultExpiry(const std::string& message, ArrivalProbe* probe) {
  USINE_LOG(ERROR) << message;
  std::fflush(stderr);
  if (probe == nullptr) std::_Exit(kCollectiveTimeoutExitCode);
  ::sleep(1);  // Let the other ranks print their view before the job is torn down.
  probe->Abort(kCollectiveTimeoutExitCode);
}

}  // namespace

Watchdog::Token& Watchdog::Token::operator=(Token&& other) noexcept {
  Release();
  id_ = std::exchange(other.id_, 0);
  return *this;
}

void Watchdog::Token::Release() {
  if (id_ != 0) Watchdog::Get().Remove(std::exchange(id_, 0));
}

Watchdog& Watchdog::Get() {
  static Watchdog* const watchdog = new Watchdog();  // Never destroyed: the thread runs on.
  return *watchdog;
}

Watchdog::Watchdog() : action_(&DefaultExpiry) {
  thread_ = std::thread([this] { Run(); });
  thread_.detach();
}

Watchdog::Token Watchdog::Track(std::string description, absl::Duration timeout,
                                ArrivalProbe* probe) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  const absl::Time now = absl::Now();
  const absl::Time deadline = now + timeout;
  entries_.emplace(id, Entry{std::move(description), timeout, now, deadline, probe, nullptr});
  // The thread wakes at least every kPollInterval; waking it costs a context switch per call,
  // so only a deadline sooner than its next wake-up does.
  if (deadline < next_wake_) changed_.notify_one();
  return Token(id);
}

void Watchdog::SetCompletionTest(const Token& token, std::function<bool()> completed) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = entries_.find(token.id_);
  if (it != entries_.end()) it->second.completed = std::move(completed);
}

void Watchdog::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(id);
}

void Watchdog::PollCompletionTestsLocked(std::unique_lock<std::mutex>& lock) {
  std::vector<std::pair<uint64_t, std::function<bool()>>> tests;
  for (const auto& [id, entry] : entries_) {
    if (entry.completed) tests.emplace_back(id, entry.completed);
  }
  if (tests.empty()) return;
  // A test may query a device, which can block behind a stuck call: never with mu_ held, which
  // every Track and Release takes.
  lock.unlock();
  std::vector<uint64_t> over;
  for (const auto& [id, test] : tests) {
    if (test()) over.push_back(id);
  }
  tests.clear();
  lock.lock();
  for (const uint64_t id : over) entries_.erase(id);
}

void Watchdog::set_report_grace(absl::Duration grace) {
  std::lock_guard<std::mutex> lock(mu_);
  grace_ = grace;
}

void Watchdog::set_expiry_action(ExpiryAction action) {
  std::lock_guard<std::mutex> lock(mu_);
  action_ = std::move(action);
}

void Watchdog::ResetExpiryAction() { set_expiry_action(&DefaultExpiry); }

std::string Watchdog::ExpiryMessage(const std::string& description,
                                    const std::string& what_happened,
                                    const std::vector<std::optional<std::string>>& reports,
                                    absl::Duration grace) {
  std::vector<int> missing;
  std::vector<std::string> seen;
  for (size_t r = 0; r < reports.size(); ++r) {
    if (!reports[r].has_value()) {
      missing.push_back(static_cast<int>(r));
    } else {
      seen.push_back(*reports[r]);
    }
  }
  std::string message = absl::StrCat("watchdog: ", description, " ", what_happened);
  if (reports.empty()) return message;
  if (missing.empty()) {
    absl::StrAppend(&message, "; every rank reported a stuck call");
  } else {
    absl::StrAppend(&message, "; rank(s) ", absl::StrJoin(missing, ", "),
                    " did not arrive (no report within ", absl::FormatDuration(grace), ")");
  }
  absl::StrAppend(&message, "; reports: ", absl::StrJoin(seen, "; "));
  return message;
}

void Watchdog::ExplainStopLocked(std::unique_lock<std::mutex>& lock) {
  auto oldest = entries_.begin();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second.start < oldest->second.start) oldest = it;
  }
  const absl::Duration waited = absl::Now() - oldest->second.start;
  if (waited < kStopSignalPatience || oldest->second.probe == nullptr) return;
  stop_explained_ = true;
  const Entry entry = oldest->second;
  lock.unlock();
  const auto reports = entry.probe->ExchangeReports(entry.description, kStopSignalGrace);
  USINE_LOG(ERROR) << ExpiryMessage(
      entry.description,
      absl::StrCat("had waited ", absl::FormatDuration(absl::Trunc(waited, absl::Milliseconds(1))),
                   " when signal ", StopSignal(), " arrived (the job is being stopped)"),
      reports, kStopSignalGrace);
  std::fflush(stderr);
  lock.lock();
}

void Watchdog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (entries_.empty()) {
      next_wake_ = absl::Now() + kPollInterval;
      changed_.wait_for(lock, absl::ToChronoNanoseconds(kPollInterval));
      continue;
    }
    PollCompletionTestsLocked(lock);
    if (entries_.empty()) continue;
    // The earliest deadline; the map is small (one entry per call in flight).
    auto first = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.deadline < first->second.deadline) first = it;
    }
    const absl::Time now = absl::Now();
    if (now < first->second.deadline) {
      if (StopSignal() != 0 && !stop_explained_) ExplainStopLocked(lock);
      // Wake at the deadline, and meanwhile often enough to notice a stop signal.
      const absl::Duration wait = std::min(first->second.deadline - absl::Now(), kPollInterval);
      next_wake_ = absl::Now() + wait;
      changed_.wait_for(lock, absl::ToChronoNanoseconds(wait));
      continue;
    }
    const Entry stuck = first->second;
    const absl::Duration grace = grace_;
    const ExpiryAction action = action_;
    entries_.erase(first);
    lock.unlock();
    std::vector<std::optional<std::string>> reports;
    if (stuck.probe != nullptr) reports = stuck.probe->ExchangeReports(stuck.description, grace);
    action(
        ExpiryMessage(stuck.description,
                      absl::StrCat("did not complete within ", absl::FormatDuration(stuck.timeout)),
                      reports, grace),
        stuck.probe);
    lock.lock();
  }
}

}  // namespace usine
