#include "collectives/byte_exchange.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"

namespace usine {
namespace {

absl::StatusOr<Tensor> HostBytes(void* data, int64_t n, DType dtype) {
  return Tensor::Wrap(data, {n}, dtype, Device::Cpu());
}

}  // namespace

absl::StatusOr<std::vector<std::string>> AllGatherBytes(Communicator& comm, absl::string_view mine,
                                                        const CollectiveOptions& options) {
  int64_t my_size = static_cast<int64_t>(mine.size());
  std::vector<int64_t> sizes(comm.size());
  ASSIGN_OR_RETURN(Tensor send_size, HostBytes(&my_size, 1, DType::kI64));
  ASSIGN_OR_RETURN(Tensor all_sizes, HostBytes(sizes.data(), comm.size(), DType::kI64));
  RETURN_IF_ERROR(comm.AllGather(send_size, all_sizes, options));

  const int64_t longest = *std::max_element(sizes.begin(), sizes.end());
  std::vector<std::string> all(comm.size());
  if (longest == 0) return all;
  std::string padded(mine);
  padded.resize(longest);
  std::string gathered(longest * comm.size(), '\0');
  ASSIGN_OR_RETURN(Tensor send, HostBytes(padded.data(), longest, DType::kU8));
  ASSIGN_OR_RETURN(Tensor recv, HostBytes(gathered.data(), longest * comm.size(), DType::kU8));
  RETURN_IF_ERROR(comm.AllGather(send, recv, options));
  for (int r = 0; r < comm.size(); ++r) all[r] = gathered.substr(r * longest, sizes[r]);
  return all;
}

absl::Status BroadcastBytes(Communicator& comm, int root, std::string* bytes,
                            const CollectiveOptions& options) {
  int64_t size = static_cast<int64_t>(bytes->size());
  ASSIGN_OR_RETURN(Tensor size_tensor, HostBytes(&size, 1, DType::kI64));
  RETURN_IF_ERROR(comm.Broadcast(size_tensor, root, options));
  bytes->resize(size);
  if (size == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Tensor data, HostBytes(bytes->data(), size, DType::kU8));
  return comm.Broadcast(data, root, options);
}

absl::Status AgreeOnStatus(Communicator& comm, const absl::Status& mine,
                           const CollectiveOptions& options) {
  const std::string message =
      mine.ok() ? "" : absl::StrCat(static_cast<int>(mine.code()), ":", mine.message());
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, message, options));
  for (int r = 0; r < comm.size(); ++r) {
    if (all[r].empty()) continue;
    if (r == comm.rank()) return mine;
    const size_t colon = all[r].find(':');
    int code = static_cast<int>(absl::StatusCode::kInternal);
    if (!absl::SimpleAtoi(all[r].substr(0, colon), &code))
      code = static_cast<int>(absl::StatusCode::kInternal);
    return absl::Status(static_cast<absl::StatusCode>(code),
                        absl::StrCat(comm.name(), " rank ", r, ": ", all[r].substr(colon + 1)));
  }
  return absl::OkStatus();
}

}  // namespace usine
