#include "runtime/data/internal/incoming_shards.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"

namespace usine::data_internal {
namespace {

bool IsRoot(const Communicator* comm) { return comm == nullptr || comm->rank() == 0; }

// What a rank opened, as it tells the others: 'T' and the token count, or 'R' and why the
// file was rejected.
std::string Outcome(const IncomingShard& opened) {
  return opened.shard != nullptr ? absl::StrCat("T", opened.shard->size())
                                 : absl::StrCat("R", opened.rejection);
}

std::string DescribeOutcome(absl::string_view outcome) {
  return outcome[0] == 'T' ? absl::StrCat(outcome.substr(1), " tokens")
                           : absl::StrCat("a malformed file (", outcome.substr(1), ")");
}

}  // namespace

absl::StatusOr<std::unique_ptr<IncomingShards>> IncomingShards::Open(
    IncomingOptions options, const std::vector<std::string>& consumed) {
  std::unique_ptr<DirectoryWatcher> watcher;
  if (IsRoot(options.comm)) {
    ASSIGN_OR_RETURN(watcher, DirectoryWatcher::Open(options.directory, options.method));
  }
  std::unique_ptr<IncomingShards> incoming(
      new IncomingShards(std::move(options), std::move(watcher)));
  incoming->taken_.insert(consumed.begin(), consumed.end());
  return incoming;
}

absl::StatusOr<std::string> IncomingShards::Choose() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, watcher_->List());
  for (std::string& name : names) {
    if (!taken_.contains(name)) return std::move(name);
  }
  return std::string();
}

absl::StatusOr<std::string> IncomingShards::Agree(bool closing, absl::StatusOr<std::string> name) {
  if (!HasPeers()) {
    if (closing) return absl::CancelledError("data stream closed");
    return name;
  }
  // Each rank says whether it is closing ('C' or '-'); rank 0 adds its decision: 'N' and a
  // name (empty: none ready), or 'E' and the error that kept it from deciding.
  Communicator* comm = options_.comm;
  std::string mine(1, closing ? 'C' : '-');
  if (comm->rank() == 0) {
    absl::StrAppend(&mine, name.ok() ? "N" : "E", name.ok() ? *name : name.status().message());
  }
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(*comm, mine));
  for (const std::string& said : all) {
    if (said[0] == 'C') return absl::CancelledError("data stream closed on some rank");
  }
  const std::string& decision = all[0];
  if (decision[1] == 'E') {
    return absl::UnavailableError(
        absl::StrCat("rank 0 of ", comm->name(), ": ", decision.substr(2)));
  }
  return decision.substr(2);
}

absl::StatusOr<IncomingShard> IncomingShards::OpenShard(const std::string& name,
                                                        const std::atomic<bool>& closing) const {
  const std::string path = (std::filesystem::path(options_.directory) / name).string();
  // On a shared file system another host's view may lag behind rank 0's.
  const absl::Time deadline = absl::Now() + options_.arrival_grace;
  std::error_code error;
  while (!std::filesystem::exists(path, error)) {
    if (closing.load()) {
      return absl::CancelledError(
          absl::StrCat("data stream closed while waiting for incoming shard ", path));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("incoming shard ", path, " named by rank 0 did not appear here within ",
                       absl::FormatDuration(options_.arrival_grace)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  absl::StatusOr<TokenShard> shard = TokenShard::Open(path, options_.vocab_size);
  if (!shard.ok()) return IncomingShard{name, nullptr, std::string(shard.status().message())};
  return IncomingShard{name, std::make_shared<const TokenShard>(*std::move(shard)), ""};
}

absl::StatusOr<IncomingShard> IncomingShards::OpenEverywhere(
    const std::string& name, const std::atomic<bool>& closing) const {
  absl::StatusOr<IncomingShard> opened = OpenShard(name, closing);
  if (!HasPeers()) return opened;
  Communicator& comm = *options_.comm;
  RETURN_IF_ERROR(AgreeOnStatus(comm, opened.status()));
  ASSIGN_OR_RETURN(const std::vector<std::string> all, AllGatherBytes(comm, Outcome(*opened)));
  // Every rank rejecting the file is one outcome, whatever each one's reason.
  if (std::all_of(all.begin(), all.end(), [](const std::string& o) { return o[0] == 'R'; })) {
    return opened;
  }
  for (int r = 1; r < comm.size(); ++r) {
    if (all[r] == all[0]) continue;
    return absl::UnavailableError(absl::StrCat(
        "incoming shard ", name, " of ", options_.directory, ": rank 0 of ", comm.name(), " reads ",
        DescribeOutcome(all[0]), ", rank ", r, " ", DescribeOutcome(all[r]),
        "; their views of the directory differ (a shared file system that lags?)"));
  }
  return opened;
}

absl::StatusOr<IncomingShard> IncomingShards::Take(bool wait, const std::atomic<bool>& closing) {
  const bool root = IsRoot(options_.comm);
  const absl::Time started = absl::Now();
  absl::Time reported = absl::InfinitePast();
  while (true) {
    absl::StatusOr<std::string> choice = root ? Choose() : std::string();
    ASSIGN_OR_RETURN(std::string name, Agree(closing.load(), std::move(choice)));
    if (!name.empty()) {
      taken_.insert(name);
      if (root && reported != absl::InfinitePast()) {
        USINE_LOG(INFO) << "incoming shard " << name << " after waiting "
                        << absl::FormatDuration(
                               absl::Trunc(absl::Now() - started, absl::Seconds(1)));
      }
      return OpenEverywhere(name, closing);
    }
    if (!wait) return IncomingShard{};
    if (root && absl::Now() - reported >= options_.report_every) {
      USINE_LOG(INFO) << "waiting for new shards in " << options_.directory << " ("
                      << absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Seconds(1)))
                      << ")";
      reported = absl::Now();
    }
    if (root) {
      RETURN_IF_ERROR(watcher_->Wait(options_.poll_interval).status());
    } else {
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(options_.poll_interval));
    }
  }
}

}  // namespace usine::data_internal
