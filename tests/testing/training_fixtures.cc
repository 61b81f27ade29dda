#include "tests/testing/training_fixtures.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <stdlib.h>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"

namespace usine::testing {

absl::StatusOr<std::string> MakeSharedTempDir(Communicator& comm, const std::string& prefix) {
  std::string dir;
  absl::Status made;
  if (comm.rank() == 0) {
    std::string tmpl = absl::StrCat("/tmp/", prefix, "_XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) {
      made = absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
    }
    dir = tmpl;
  }
  RETURN_IF_ERROR(AgreeOnStatus(comm, made));
  RETURN_IF_ERROR(BroadcastBytes(comm, 0, &dir));
  return dir;
}

absl::Status RemoveSharedTempDir(Communicator& comm, const std::string& dir) {
  RETURN_IF_ERROR(comm.Barrier());
  if (comm.rank() == 0) {
    std::error_code error;
    std::filesystem::remove_all(dir, error);
  }
  return absl::OkStatus();
}

absl::StatusOr<StateDict> DeepCopy(const StateDict& state) {
  StateDict copy;
  for (const auto& [name, entry] : state.tensors()) {
    for (const TensorPiece& piece : entry.pieces) {
      ASSIGN_OR_RETURN(Tensor t, Tensor::Empty(piece.tensor.shape(), piece.tensor.dtype()));
      std::memcpy(t.raw_data(), piece.tensor.raw_data(), t.nbytes());
      RETURN_IF_ERROR(copy.AddShard(name, t, entry.global_shape, piece.offset));
    }
  }
  copy.mutable_metadata() = state.metadata();
  return copy;
}

std::vector<int32_t> LearnableTokens(int64_t n, int salt) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i % 23) * 7 + (i / 97 + salt) % 5);
  return ids;
}

}  // namespace usine::testing
