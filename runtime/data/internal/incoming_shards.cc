#include "runtime/data/internal/incoming_shards.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"

#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"

namespace usine::data_internal {
namespace {

// The broadcast decision: [kind, length] as int32, then the bytes of a name or an error.
constexpr int64_t kDecisionHeader = 8;
constexpr int64_t kDecisionBytes = kDecisionHeader + 4096;
enum DecisionKind : int32_t { kName = 0, kError = 1 };

bool IsRoot(const Communicator* comm) { return comm == nullptr || comm->rank() == 0; }

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
  Communicator* comm = options_.comm;
  if (comm == nullptr || comm->size() == 1) {
    if (closing) return absl::CancelledError("data stream closed");
    return name;
  }
  ASSIGN_OR_RETURN(Tensor flag, Tensor::Empty({1}, DType::kI32));
  ASSIGN_OR_RETURN(absl::Span<int32_t> flag_value, flag.host_span<int32_t>());
  flag_value[0] = closing ? 1 : 0;
  RETURN_IF_ERROR(comm->AllReduce(flag, ReduceOp::kMax));
  if (flag_value[0] != 0) return absl::CancelledError("data stream closed on some rank");

  ASSIGN_OR_RETURN(Tensor decision, Tensor::Empty({kDecisionBytes}, DType::kU8));
  ASSIGN_OR_RETURN(absl::Span<uint8_t> bytes, decision.host_span<uint8_t>());
  if (comm->rank() == 0) {
    const int32_t kind = name.ok() ? kName : kError;
    const std::string text = name.ok() ? *name : std::string(name.status().message());
    const int32_t length =
        static_cast<int32_t>(std::min<size_t>(text.size(), kDecisionBytes - kDecisionHeader));
    std::memcpy(bytes.data(), &kind, 4);
    std::memcpy(bytes.data() + 4, &length, 4);
    std::memcpy(bytes.data() + kDecisionHeader, text.data(), length);
  }
  RETURN_IF_ERROR(comm->Broadcast(decision, /*root=*/0));
  int32_t kind = 0;
  int32_t length = 0;
  std::memcpy(&kind, bytes.data(), 4);
  std::memcpy(&length, bytes.data() + 4, 4);
  std::string text(reinterpret_cast<const char*>(bytes.data()) + kDecisionHeader, length);
  if (kind == kError) {
    return absl::UnavailableError(absl::StrCat("rank 0 of ", comm->name(), ": ", text));
  }
  return text;
}

absl::StatusOr<IncomingShard> IncomingShards::OpenShard(const std::string& name) const {
  const std::string path = (std::filesystem::path(options_.directory) / name).string();
  // On a shared file system another host's view may lag behind rank 0's.
  const absl::Time deadline = absl::Now() + options_.arrival_grace;
  std::error_code error;
  while (!std::filesystem::exists(path, error)) {
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

absl::StatusOr<IncomingShard> IncomingShards::Reopen(const std::string& name) const {
  return OpenShard(name);
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
      return OpenShard(name);
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
