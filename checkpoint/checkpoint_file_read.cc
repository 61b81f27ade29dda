// ReadCheckpointFile: each rank reads its boxes; tensors that the ranks read whole between
// them are checked against their CRC-32C.
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "checkpoint/checkpoint_file.h"
#include "checkpoint/internal/collective_plan.h"
#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/metadata_io.h"
#include "checkpoint/internal/stored_tensor.h"
#include "checkpoint/internal/tensor_crc.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using checkpoint_internal::CollectivePlan;
using checkpoint_internal::H5File;
using checkpoint_internal::OwnedBox;
using checkpoint_internal::PlannedTensor;
using checkpoint_internal::StoredTensor;

// Pieces from this size on are checksummed on a worker thread, overlapping the next reads.
constexpr size_t kAsyncChecksumBytes = size_t{1} << 20;

struct LocalRead {
  std::vector<uint32_t> terms;     // Per planned tensor: xor of the boxes this rank owns.
  std::vector<uint32_t> recorded;  // Per planned tensor: the file's CRC (0 when not read here).
  std::map<std::string, MetadataValue> metadata;
};

// Reads every piece of `entry` (independent transfers: the ranks read different numbers of
// boxes). `version` is the file's format version, for the message when a shape differs.
absl::Status ReadPieces(const H5File& file, const PlannedTensor& planned, const TensorEntry& entry,
                        int rank, int64_t version, uint32_t* recorded) {
  ASSIGN_OR_RETURN(StoredTensor stored, checkpoint_internal::OpenStoredTensor(file, planned.name));
  if (stored.dtype != entry.dtype || stored.dataset.shape != entry.global_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path, ": dataset ", stored.path, " is ", DTypeName(stored.dtype),
        stored.dataset.shape.ToString(), " but rank ", rank, " expects ", DTypeName(entry.dtype),
        entry.global_shape.ToString(),
        version < 2 ? " (the file has format version 1, whose optimizer moments are flattened "
                      "to 1-D; this build's optimizers keep them in the parameter's shape)"
                    : ""));
  }
  for (const TensorPiece& piece : entry.pieces) {
    RETURN_IF_ERROR(checkpoint_internal::ReadBox(file, stored, piece.offset, piece.tensor.shape(),
                                                 piece.tensor.raw_data()));
  }
  *recorded = stored.crc32c;
  return absl::OkStatus();
}

// The xor of the CRC terms of this rank's pieces whose boxes it checksums (owns in a tiled
// tensor).
uint32_t PieceTerms(const PlannedTensor& planned, const TensorEntry& entry, int rank) {
  if (!planned.tiled) return 0;
  checkpoint_internal::TensorCrc crc(planned.global_shape, DTypeSize(planned.dtype));
  uint32_t terms = 0;
  for (const OwnedBox& owned : checkpoint_internal::OwnedBoxes(planned, entry, rank)) {
    terms ^= crc.BoxTerm(static_cast<const uint8_t*>(owned.piece->tensor.raw_data()),
                         owned.box->extent, owned.box->offset);
  }
  return terms;
}

absl::StatusOr<LocalRead> ReadLocal(const std::string& path, const CollectivePlan& plan,
                                    StateDict& state, Communicator& comm, bool verify) {
  ASSIGN_OR_RETURN(H5File file, checkpoint_internal::OpenH5File(path, comm));
  LocalRead out;
  out.terms.assign(plan.tensors.size(), 0);
  out.recorded.assign(plan.tensors.size(), 0);
  absl::StatusOr<checkpoint_internal::FormatInfo> format = checkpoint_internal::CheckFormat(file);
  absl::Status status = format.status();
  const int64_t version = format.ok() ? format->version : 0;
  // Checksums of large pieces run on worker threads while the next pieces are read.
  std::vector<std::pair<size_t, std::future<uint32_t>>> pending;
  for (size_t i = 0; status.ok() && i < plan.tensors.size(); ++i) {
    auto it = state.tensors().find(plan.tensors[i].name);
    if (it == state.tensors().end()) {
      // Opening a dataset reads HDF5 metadata collectively (all_coll_metadata_ops, h5_file.cc):
      // every rank opens every planned tensor, also one it reads nothing of (a ZeRO-1 rank
      // holds pieces of only some of the optimizer's tensors), or the ranks deadlock.
      status = checkpoint_internal::OpenStoredTensor(file, plan.tensors[i].name).status();
      continue;
    }
    status = ReadPieces(file, plan.tensors[i], it->second, comm.rank(), version, &out.recorded[i]);
    if (!status.ok() || !verify) continue;
    const PlannedTensor& planned = plan.tensors[i];
    const TensorEntry& entry = it->second;
    const int rank = comm.rank();
    if (entry.nbytes() < static_cast<int64_t>(kAsyncChecksumBytes)) {
      out.terms[i] = PieceTerms(planned, entry, rank);
    } else {
      pending.emplace_back(i, std::async(std::launch::async, [&planned, &entry, rank] {
                             return PieceTerms(planned, entry, rank);
                           }));
    }
  }
  for (auto& [i, term] : pending) out.terms[i] = term.get();
  if (status.ok()) {
    absl::StatusOr<std::map<std::string, MetadataValue>> metadata =
        checkpoint_internal::ReadMetadata(file);
    if (metadata.ok()) out.metadata = std::move(*metadata);
    status = metadata.status();
  }
  file.file.Close();  // Collective: every rank gets here, also after an error.
  if (!status.ok()) return status;
  return out;
}

// Checks the tiled tensors' CRCs from every rank's terms.
absl::Status VerifyChecksums(const std::string& path, const CollectivePlan& plan,
                             const LocalRead& local, const StateDict& state, Communicator& comm) {
  const std::string mine(reinterpret_cast<const char*>(local.terms.data()), local.terms.size() * 4);
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, mine));
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    if (!t.tiled || !state.tensors().contains(t.name)) continue;
    uint32_t terms = 0;
    for (const std::string& other : all) {
      uint32_t term;
      std::memcpy(&term, other.data() + 4 * i, 4);
      terms ^= term;
    }
    const uint32_t crc =
        checkpoint_internal::TensorCrc(t.global_shape, DTypeSize(t.dtype)).Finish(terms);
    if (crc != local.recorded[i]) {
      return absl::DataLossError(absl::StrFormat(
          "%s: dataset %s/%s has CRC-32C 0x%08x but its recorded CRC-32C is 0x%08x (damaged)", path,
          checkpoint_internal::kTensorsGroup, t.name, crc, local.recorded[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadCheckpointFile(const std::string& path, StateDict& state, Communicator& comm,
                                const ReadOptions& options) {
  absl::Status host;
  for (const auto& [name, entry] : state.tensors()) {
    for (const TensorPiece& piece : entry.pieces) {
      if (!piece.tensor.device().is_cpu() && host.ok()) {
        host = absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has a piece ",
                                                       piece.tensor.DebugString(),
                                                       ": reads take host tensors"));
      }
    }
  }
  RETURN_IF_ERROR(AgreeOnStatus(comm, host));
  ASSIGN_OR_RETURN(CollectivePlan plan, checkpoint_internal::PlanCollectively(
                                            state, comm, checkpoint_internal::PlanPurpose::kRead));
  absl::StatusOr<LocalRead> local = ReadLocal(path, plan, state, comm, options.verify_checksums);
  RETURN_IF_ERROR(AgreeOnStatus(comm, local.status()));
  if (options.verify_checksums) {
    RETURN_IF_ERROR(AgreeOnStatus(comm, VerifyChecksums(path, plan, *local, state, comm)));
  }
  state.mutable_metadata() = std::move(local->metadata);
  return absl::OkStatus();
}

}  // namespace usine
