// WriteCheckpointFile: plan, then one dataset per tensor written collectively, while a worker
// thread computes the checksums; then the checksums.
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include <hdf5.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "checkpoint/checkpoint_file.h"
#include "checkpoint/internal/collective_plan.h"
#include "checkpoint/internal/h5_file.h"
#include "checkpoint/internal/h5_objects.h"
#include "checkpoint/internal/hdf5_types.h"
#include "checkpoint/internal/metadata_io.h"
#include "checkpoint/internal/tensor_crc.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine {
namespace {

using checkpoint_internal::CollectivePlan;
using checkpoint_internal::H5File;
using checkpoint_internal::H5Handle;
using checkpoint_internal::OwnedBox;
using checkpoint_internal::PlannedTensor;

absl::Status CheckHostPieces(const StateDict& state) {
  for (const auto& [name, entry] : state.tensors()) {
    for (const TensorPiece& piece : entry.pieces) {
      if (!piece.tensor.device().is_cpu()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", name, "' has a piece ", piece.tensor.DebugString(),
                         ": checkpoint files take host tensors (Checkpointer copies them)"));
      }
    }
  }
  return absl::OkStatus();
}

// Per planned tensor, the xor of the CRC terms of the boxes this rank writes (tensor_crc.h).
// Pure computation: runs on a worker thread while the I/O thread writes.
std::vector<uint32_t> LocalTerms(const CollectivePlan& plan, const StateDict& state, int rank) {
  std::vector<uint32_t> terms(plan.tensors.size(), 0);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    auto entry = state.tensors().find(t.name);
    if (entry == state.tensors().end()) continue;
    checkpoint_internal::TensorCrc crc(t.global_shape, DTypeSize(t.dtype));
    for (const OwnedBox& owned : checkpoint_internal::OwnedBoxes(t, entry->second, rank)) {
      terms[i] ^= crc.BoxTerm(static_cast<const uint8_t*>(owned.piece->tensor.raw_data()),
                              owned.box->extent, owned.box->offset);
    }
  }
  return terms;
}

// The CRC-32C of every planned tensor from every rank's terms (a collective).
absl::StatusOr<std::vector<uint32_t>> CombineTerms(const CollectivePlan& plan,
                                                   const std::vector<uint32_t>& terms,
                                                   Communicator& comm) {
  const std::string mine(reinterpret_cast<const char*>(terms.data()), terms.size() * 4);
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, mine));
  std::vector<uint32_t> crcs(plan.tensors.size(), 0);
  for (const std::string& other : all) {
    for (size_t i = 0; i < crcs.size(); ++i) {
      uint32_t term;
      std::memcpy(&term, other.data() + 4 * i, 4);
      crcs[i] ^= term;
    }
  }
  for (size_t i = 0; i < crcs.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    crcs[i] = checkpoint_internal::TensorCrc(t.global_shape, DTypeSize(t.dtype)).Finish(crcs[i]);
  }
  return crcs;
}

std::string TensorPath(const PlannedTensor& t) {
  return absl::StrCat(checkpoint_internal::kTensorsGroup, "/", t.name);
}

// Each tensor's crc32c attribute (collective), once the data is written.
absl::Status WriteChecksums(const H5File& file, const CollectivePlan& plan,
                            const std::vector<uint32_t>& crcs) {
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const std::string path = TensorPath(plan.tensors[i]);
    ASSIGN_OR_RETURN(
        H5Handle dataset,
        H5Handle::Own(USINE_HDF5_ID(H5Dopen2(file.file.id(), path.c_str(), H5P_DEFAULT)),
                      H5Dclose));
    RETURN_IF_ERROR(checkpoint_internal::WriteUint32Attribute(dataset.id(), "crc32c", crcs[i]));
  }
  return absl::OkStatus();
}

absl::StatusOr<H5Handle> DataspaceOf(const Shape& shape) {
  if (shape.rank() == 0) return H5Handle::Own(USINE_HDF5_ID(H5Screate(H5S_SCALAR)), H5Sclose);
  std::vector<hsize_t> dims(shape.dims().begin(), shape.dims().end());
  return H5Handle::Own(
      USINE_HDF5_ID(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)),
      H5Sclose);
}

// Writes `owned` (a box and its piece) into `dataset`, or nothing when it is null: one
// collective transfer on an MPI-IO file. A failure of the transfer alone is returned in
// *write_error, so that this rank goes on taking part in the collective calls that follow.
absl::Status WriteBox(const H5File& file, const std::string& path, hid_t dataset, hid_t type,
                      hid_t file_space, hid_t xfer, const OwnedBox* owned,
                      absl::Status* write_error) {
  const void* data = nullptr;
  H5Handle mem_space;
  if (owned != nullptr) {
    RETURN_IF_ERROR(
        checkpoint_internal::SelectBox(file_space, owned->box->offset, owned->box->extent));
    ASSIGN_OR_RETURN(mem_space, DataspaceOf(owned->box->extent));
    data = owned->piece->tensor.raw_data();
  } else {
    RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Sselect_none(file_space)));
    ASSIGN_OR_RETURN(mem_space, H5Handle::Own(USINE_HDF5_ID(H5Screate(H5S_SCALAR)), H5Sclose));
    RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Sselect_none(mem_space.id())));
  }
  absl::Status status =
      USINE_HDF5_STATUS(H5Dwrite(dataset, type, mem_space.id(), file_space, xfer, data));
  if (!status.ok() && write_error->ok()) {
    *write_error = WithContext(status, absl::StrCat("writing ", path, " to ", file.path));
  }
  return absl::OkStatus();
}

// Creates tensor `t`'s dataset and writes the boxes this rank owns. On an MPI-IO file every
// rank makes MaxOwnedBoxes(t) collective writes, each of one of its boxes or of nothing; one
// rank on a POSIX file writes its boxes alone.
absl::Status WriteTensor(const H5File& file, hid_t lcpl, hid_t dcpl, hid_t xfer,
                         const PlannedTensor& t, const StateDict& state, int rank,
                         absl::Status* write_error) {
  const std::string path = TensorPath(t);
  ASSIGN_OR_RETURN(H5Handle type, checkpoint_internal::FileTypeOf(t.dtype));
  ASSIGN_OR_RETURN(H5Handle file_space, DataspaceOf(t.global_shape));
  ASSIGN_OR_RETURN(
      H5Handle dataset,
      H5Handle::Own(USINE_HDF5_ID(H5Dcreate2(file.file.id(), path.c_str(), type.id(),
                                             file_space.id(), lcpl, dcpl, H5P_DEFAULT)),
                    H5Dclose));
  RETURN_IF_ERROR(
      checkpoint_internal::WriteStringAttribute(dataset.id(), "dtype", DTypeName(t.dtype)));
  // Empty tensors have no storage to write to.
  if (t.global_shape.numel() == 0) return absl::OkStatus();
  std::vector<OwnedBox> mine;
  auto entry = state.tensors().find(t.name);
  if (entry != state.tensors().end()) {
    mine = checkpoint_internal::OwnedBoxes(t, entry->second, rank);
  }
  const int writes =
      file.mpio ? checkpoint_internal::MaxOwnedBoxes(t) : static_cast<int>(mine.size());
  for (int k = 0; k < writes; ++k) {
    const OwnedBox* owned = k < static_cast<int>(mine.size()) ? &mine[k] : nullptr;
    RETURN_IF_ERROR(
        WriteBox(file, path, dataset.id(), type.id(), file_space.id(), xfer, owned, write_error));
  }
  return absl::OkStatus();
}

// Everything but closing the file. The HDF5 objects it opens are closed when it returns.
absl::Status WriteContents(const H5File& file, const CollectivePlan& plan,
                           std::future<std::vector<uint32_t>>& terms, const StateDict& state,
                           Communicator& comm) {
  const hid_t root = file.file.id();
  RETURN_IF_ERROR(checkpoint_internal::WriteStringAttribute(root, "usine_format",
                                                            checkpoint_internal::kFormatName));
  RETURN_IF_ERROR(checkpoint_internal::WriteInt64Attribute(root, "format_version",
                                                           checkpoint_internal::kFormatVersion));
  RETURN_IF_ERROR(checkpoint_internal::WriteInt64Attribute(root, "world_size", comm.size()));
  RETURN_IF_ERROR(checkpoint_internal::WriteMetadata(file, plan.metadata, comm.rank() == 0));

  ASSIGN_OR_RETURN(H5Handle group,
                   H5Handle::Own(USINE_HDF5_ID(H5Gcreate2(root, checkpoint_internal::kTensorsGroup,
                                                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                                 H5Gclose));
  ASSIGN_OR_RETURN(H5Handle lcpl, checkpoint_internal::IntermediateGroupsList());
  ASSIGN_OR_RETURN(H5Handle dcpl,
                   H5Handle::Own(USINE_HDF5_ID(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose));
  // Every element is written: no fill pass over the file first.
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER)));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY)));
  ASSIGN_OR_RETURN(H5Handle xfer, checkpoint_internal::TransferList(file));
  absl::Status write_error;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    RETURN_IF_ERROR(WriteTensor(file, lcpl.id(), dcpl.id(), xfer.id(), plan.tensors[i], state,
                                comm.rank(), &write_error));
  }
  ASSIGN_OR_RETURN(std::vector<uint32_t> crcs, CombineTerms(plan, terms.get(), comm));
  RETURN_IF_ERROR(WriteChecksums(file, plan, crcs));
  return write_error;
}

// Flushes and closes the file after `status`, the outcome of writing it on this rank, with
// one outcome for every rank. HDF5 1.10 crashes at exit when a file failed to close, which a
// full disk causes (closing writes metadata): so the ranks agree on a failure first, and the
// partial file is emptied to free its space before it is closed (it is deleted after).
absl::Status FinishFile(H5File& file, absl::Status status, Communicator& comm) {
  if (status.ok()) {
    status = WithContext(USINE_HDF5_STATUS(H5Fflush(file.file.id(), H5F_SCOPE_GLOBAL)),
                         absl::StrCat("flushing ", file.path));
  }
  status = AgreeOnStatus(comm, status);
  if (!status.ok()) {
    if (comm.rank() == 0) ::truncate(file.path.c_str(), 0);
    RETURN_IF_ERROR(comm.Barrier());
  }
  if (file.file.Close() < 0 && status.ok()) {
    status = WithContext(USINE_HDF5_STATUS(-1), absl::StrCat("closing ", file.path));
  }
  return status;
}

absl::Status WriteAll(const std::string& path, const CollectivePlan& plan,
                      std::future<std::vector<uint32_t>>& terms, const StateDict& state,
                      Communicator& comm) {
  ASSIGN_OR_RETURN(H5File file, checkpoint_internal::CreateH5File(path, comm));
  return FinishFile(file, WriteContents(file, plan, terms, state, comm), comm);
}

}  // namespace

absl::Status WriteCheckpointFile(const std::string& path, const StateDict& state,
                                 Communicator& comm) {
  RETURN_IF_ERROR(AgreeOnStatus(comm, CheckHostPieces(state)));
  ASSIGN_OR_RETURN(CollectivePlan plan, checkpoint_internal::PlanCollectively(
                                            state, comm, checkpoint_internal::PlanPurpose::kWrite));
  // The checksums are computed while the data is written (the same bytes, read only).
  std::future<std::vector<uint32_t>> terms =
      std::async(std::launch::async, [&] { return LocalTerms(plan, state, comm.rank()); });
  return AgreeOnStatus(comm, WriteAll(path, plan, terms, state, comm));
}

}  // namespace usine
