// ReadCheckpointFile: each rank reads its boxes; tensors that the ranks read whole between
// them are checked against their CRC-32C.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

#include "checkpoint/checkpoint_file.h"
#include "checkpoint/internal/collective_plan.h"
#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/metadata_io.h"
#include "checkpoint/internal/stored_tensor.h"
#include "checkpoint/internal/tensor_crc.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/parallel_for.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using checkpoint_internal::CollectivePlan;
using checkpoint_internal::H5File;
using checkpoint_internal::OwnedBox;
using checkpoint_internal::PlannedTensor;
using checkpoint_internal::StoredTensor;

// Pieces are read in slabs of whole rows of about kSlabBytes, and each slab is checksummed
// while its bytes are still in the cache: a CRC from the cache costs a fraction of the read,
// where a second pass over a piece would read it from memory again.
// - A piece of whole rows of a tensor stored contiguously (what usine writes, but for column
//   shards) lies in one run of the file: its slabs are read with pread, bypassing HDF5, over
//   the cpu's threads (ParallelFor), each thread checksumming the slabs it read.
// - Other pieces are read with HDF5, on one thread (it is not thread-safe).
constexpr int64_t kSlabBytes = int64_t{4} << 20;

struct LocalRead {
  std::vector<uint32_t> terms;     // Per planned tensor: xor of the boxes this rank owns.
  std::vector<uint32_t> recorded;  // Per planned tensor: the file's CRC (0 when not read here).
  std::map<std::string, MetadataValue> metadata;
};

// Reads `piece` with HDF5, slab by slab. With `crc`, returns the piece's CRC term, else 0.
absl::StatusOr<uint32_t> ReadPiece(const H5File& file, const StoredTensor& stored,
                                   const TensorPiece& piece,
                                   const checkpoint_internal::TensorCrc* crc) {
  const Shape& extent = piece.tensor.shape();
  auto* bytes = static_cast<uint8_t*>(piece.tensor.raw_data());
  if (extent.rank() == 0 || extent.numel() == 0) {
    RETURN_IF_ERROR(checkpoint_internal::ReadBox(file, stored, piece.offset, extent, bytes));
    return crc == nullptr ? 0 : crc->BoxTerm(bytes, extent, piece.offset);
  }
  const int64_t row_bytes = extent.numel() / extent.dim(0) * DTypeSize(stored.dtype);
  const int64_t slab_rows = std::max<int64_t>(1, kSlabBytes / row_bytes);
  std::vector<int64_t> dims(extent.dims().begin(), extent.dims().end());
  std::vector<int64_t> offset = piece.offset;
  uint32_t term = 0;
  for (int64_t row = 0; row < extent.dim(0); row += slab_rows) {
    dims[0] = std::min(slab_rows, extent.dim(0) - row);
    offset[0] = piece.offset[0] + row;
    const Shape slab(dims);
    uint8_t* slab_bytes = bytes + row * row_bytes;
    RETURN_IF_ERROR(checkpoint_internal::ReadBox(file, stored, offset, slab, slab_bytes));
    if (crc != nullptr) term ^= crc->BoxTerm(slab_bytes, slab, offset);
  }
  return term;
}

// Reads `n` bytes at `at` of the file `fd` into `out`. DataLoss when the file ends first.
absl::Status PreadFully(int fd, uint64_t at, size_t n, uint8_t* out, const std::string& path) {
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat(path, ": cannot read ", n, " bytes at ", at, ": ", std::strerror(error)));
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(path, ": the file ends before byte ", at));
    }
    out += got;
    n -= static_cast<size_t>(got);
    at += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

// Whether `piece` holds whole rows of `global` (a run of the row-major bytes).
bool WholeRows(const TensorPiece& piece, const Shape& global) {
  for (int d = 1; d < global.rank(); ++d) {
    if (piece.tensor.shape().dim(d) != global.dim(d)) return false;
  }
  return true;
}

// Reads `piece`, of whole rows of a tensor whose bytes start at `address` of the file `fd`,
// slab by slab over the cpu's threads. With `crc`, returns the piece's CRC term, else 0.
absl::StatusOr<uint32_t> ReadPieceRaw(int fd, const std::string& path, const StoredTensor& stored,
                                      uint64_t address, const TensorPiece& piece,
                                      const checkpoint_internal::TensorCrc* crc) {
  const Shape& extent = piece.tensor.shape();
  auto* bytes = static_cast<uint8_t*>(piece.tensor.raw_data());
  const int64_t rows = extent.rank() == 0 ? 1 : extent.dim(0);
  if (extent.numel() == 0) return 0;
  const int64_t row_bytes = extent.numel() / rows * DTypeSize(stored.dtype);
  const uint64_t first = address + static_cast<uint64_t>(extent.rank() == 0 ? 0 : piece.offset[0]) *
                                       static_cast<uint64_t>(row_bytes);
  const int64_t slab_rows = std::max<int64_t>(1, kSlabBytes / row_bytes);
  const int64_t slabs = (rows + slab_rows - 1) / slab_rows;
  std::atomic<uint32_t> term{0};
  absl::Mutex mu;
  absl::Status status;
  ParallelFor(slabs, 1, [&](int64_t begin, int64_t end) {
    uint32_t mine = 0;
    std::vector<int64_t> dims(extent.dims().begin(), extent.dims().end());
    std::vector<int64_t> offset = piece.offset;
    for (int64_t slab = begin; slab < end; ++slab) {
      const int64_t row = slab * slab_rows;
      const int64_t n = std::min(slab_rows, rows - row);
      uint8_t* out = bytes + row * row_bytes;
      absl::Status read = PreadFully(fd, first + static_cast<uint64_t>(row * row_bytes),
                                     static_cast<size_t>(n * row_bytes), out, path);
      if (!read.ok()) {
        absl::MutexLock lock(&mu);
        status.Update(WithContext(read, absl::StrCat("reading ", stored.path)));
        return;
      }
      if (crc == nullptr) continue;
      if (extent.rank() > 0) {
        dims[0] = n;
        offset[0] = piece.offset[0] + row;
      }
      mine ^= crc->BoxTerm(out, Shape(dims), offset);
    }
    term.fetch_xor(mine);
  });
  RETURN_IF_ERROR(status);
  return term.load();
}

// Reads every piece of `entry` (independent transfers: the ranks read different numbers of
// boxes). With `verify`, `*terms` gets the xor of the CRC terms of the pieces whose boxes
// this rank checksums (owns in a tiled tensor). `version` is the file's format version, for
// the message when a shape differs.
absl::Status ReadPieces(const H5File& file, int fd, const PlannedTensor& planned,
                        const TensorEntry& entry, int rank, int64_t version, bool verify,
                        uint32_t* terms, uint32_t* recorded) {
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
  *recorded = stored.crc32c;
  const checkpoint_internal::TensorCrc crc(planned.global_shape, DTypeSize(planned.dtype));
  std::vector<OwnedBox> owned;
  if (verify && planned.tiled) owned = checkpoint_internal::OwnedBoxes(planned, entry, rank);
  ASSIGN_OR_RETURN(const std::optional<uint64_t> address,
                   checkpoint_internal::RawDataAddress(file, stored));
  for (const TensorPiece& piece : entry.pieces) {
    const bool checksummed = std::any_of(owned.begin(), owned.end(),
                                         [&](const OwnedBox& box) { return box.piece == &piece; });
    const checkpoint_internal::TensorCrc* piece_crc = checksummed ? &crc : nullptr;
    ASSIGN_OR_RETURN(const uint32_t term,
                     address.has_value() && WholeRows(piece, entry.global_shape)
                         ? ReadPieceRaw(fd, file.path, stored, *address, piece, piece_crc)
                         : ReadPiece(file, stored, piece, piece_crc));
    *terms ^= term;
  }
  return absl::OkStatus();
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
  // For the reads that bypass HDF5 (ReadPieceRaw).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && status.ok()) {
    const int error = errno;
    status = absl::Status(absl::ErrnoToStatusCode(error),
                          absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  for (size_t i = 0; status.ok() && i < plan.tensors.size(); ++i) {
    auto it = state.tensors().find(plan.tensors[i].name);
    if (it == state.tensors().end()) {
      // Opening a dataset reads HDF5 metadata collectively (all_coll_metadata_ops, h5_file.cc):
      // every rank opens every planned tensor, also one it reads nothing of (a ZeRO-1 rank
      // holds pieces of only some of the optimizer's tensors), or the ranks deadlock.
      status = checkpoint_internal::OpenStoredTensor(file, plan.tensors[i].name).status();
      continue;
    }
    status = ReadPieces(file, fd, plan.tensors[i], it->second, comm.rank(), version, verify,
                        &out.terms[i], &out.recorded[i]);
  }
  if (status.ok()) {
    absl::StatusOr<std::map<std::string, MetadataValue>> metadata =
        checkpoint_internal::ReadMetadata(file);
    if (metadata.ok()) out.metadata = std::move(*metadata);
    status = metadata.status();
  }
  if (fd >= 0) ::close(fd);
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
