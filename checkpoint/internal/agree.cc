#include "checkpoint/internal/agree.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {

absl::Status AgreeOnStatus(Communicator& comm, const absl::Status& mine) {
  const std::string message =
      mine.ok() ? "" : absl::StrCat(static_cast<int>(mine.code()), ":", mine.message());
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, message));
  for (int r = 0; r < comm.size(); ++r) {
    if (all[r].empty()) continue;
    if (r == comm.rank()) return mine;
    const size_t colon = all[r].find(':');
    int code = static_cast<int>(absl::StatusCode::kInternal);
    if (!absl::SimpleAtoi(all[r].substr(0, colon), &code)) code = 13;
    return absl::Status(static_cast<absl::StatusCode>(code),
                        absl::StrCat("rank ", r, ": ", all[r].substr(colon + 1)));
  }
  return absl::OkStatus();
}

}  // namespace usine::checkpoint_internal
