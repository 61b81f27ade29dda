// Byte strings of any length over a host Communicator, for metadata that differs in size
// from rank to rank (manifest fragments, error messages, file lists).
//
//   ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, mine));  // all[r]
//   RETURN_IF_ERROR(BroadcastBytes(comm, /*root=*/0, &plan));
//
// Both are collectives with Communicator's contract (every rank calls them in the same
// order; they synchronise; timeouts as in `options`). Each is two calls: the lengths first,
// then the bytes (AllGatherBytes pads every rank's bytes to the longest), so a string is not
// limited by the others' sizes. REQUIRES: comm.device() is the cpu (mpi/ or local/).
#ifndef USINE_COLLECTIVES_BYTE_EXCHANGE_H_
#define USINE_COLLECTIVES_BYTE_EXCHANGE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "collectives/communicator.h"

namespace usine {

// Every rank's `mine`, indexed by rank, on every rank.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> AllGatherBytes(
    Communicator& comm, absl::string_view mine, const CollectiveOptions& options = {});

// *bytes <- *bytes of rank `root`, on every rank.
[[nodiscard]] absl::Status BroadcastBytes(Communicator& comm, int root, std::string* bytes,
                                          const CollectiveOptions& options = {});

// The first failure among the ranks' statuses, on every rank: how an operation that may fail
// on some ranks only (a local I/O error) ends with one outcome everywhere. Another rank's
// error comes back with its code and "<communicator> rank R: " before its message ("world rank
// 3: ", "dp rank 1: "): R is the rank in `comm`, which its name tells apart from a world rank.
//   RETURN_IF_ERROR(AgreeOnStatus(comm, local_status));
[[nodiscard]] absl::Status AgreeOnStatus(Communicator& comm, const absl::Status& mine,
                                         const CollectiveOptions& options = {});

}  // namespace usine

#endif  // USINE_COLLECTIVES_BYTE_EXCHANGE_H_
