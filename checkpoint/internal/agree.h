// The first failure among the ranks' statuses, on every rank: how a collective operation
// that may fail on some ranks only (a local I/O error) ends with one outcome everywhere.
//
//   RETURN_IF_ERROR(AgreeOnStatus(comm, local_status));
//
// A collective over `comm` (byte_exchange.h's contract). Another rank's error comes back
// with its code and "rank R: " before its message.
#ifndef USINE_CHECKPOINT_INTERNAL_AGREE_H_
#define USINE_CHECKPOINT_INTERNAL_AGREE_H_

#include "absl/status/status.h"

#include "collectives/communicator.h"

namespace usine::checkpoint_internal {

[[nodiscard]] absl::Status AgreeOnStatus(Communicator& comm, const absl::Status& mine);

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_AGREE_H_
