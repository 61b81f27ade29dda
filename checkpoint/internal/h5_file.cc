#include "checkpoint/internal/h5_file.h"

#include <fstream>

#include "absl/strings/str_cat.h"

#include "collectives/mpi/mpi_communicator.h"
#include "runtime/core/hdf5_status.h"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {
namespace {

constexpr char kSignature[] = "\x89HDF\r\n\x1a\n";
constexpr hsize_t kAlignThreshold = 64 << 10;
constexpr hsize_t kAlignment = 4 << 10;

// A file access list for `comm`: MPI-IO over its MPI communicator, or POSIX for one rank.
absl::StatusOr<H5Handle> AccessList(Communicator& comm, bool collective_metadata, bool* mpio) {
  ASSIGN_OR_RETURN(H5Handle fapl,
                   H5Handle::Own(USINE_HDF5_ID(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose));
  RETURN_IF_ERROR(
      USINE_HDF5_STATUS(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST)));
  *mpio = false;
  if (comm.size() > 1) {
    auto* mpi = dynamic_cast<MpiCommunicator*>(&comm);
    if (mpi == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint files need an MPI communicator for ", comm.size(),
                       " ranks, not '", comm.backend(), "'"));
    }
    RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_fapl_mpio(fapl.id(), mpi->mpi_comm(), MPI_INFO_NULL)));
    if (collective_metadata) {
      RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_all_coll_metadata_ops(fapl.id(), true)));
      RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_coll_metadata_write(fapl.id(), true)));
    }
    *mpio = true;
  }
  return fapl;
}

}  // namespace

void SilenceHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

absl::Status CheckSuperblock(absl::string_view head, absl::string_view path) {
  if (head.size() < 9 || head.substr(0, 8) != absl::string_view(kSignature, 8)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an HDF5 file (no signature)"));
  }
  const int version = static_cast<unsigned char>(head[8]);
  if (version < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " has an HDF5 superblock of version ", version,
        ", without metadata checksums: not a usine checkpoint (which has version 2 or 3)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<H5File> CreateH5File(const std::string& path, Communicator& comm) {
  SilenceHdf5Errors();
  H5File out;
  out.path = path;
  ASSIGN_OR_RETURN(H5Handle fapl, AccessList(comm, /*collective_metadata=*/true, &out.mpio));
  RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_alignment(fapl.id(), kAlignThreshold, kAlignment)));
  ASSIGN_OR_RETURN(
      out.file,
      H5Handle::Own(USINE_HDF5_ID(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id())),
                    H5Fclose));
  return out;
}

absl::StatusOr<H5File> OpenH5File(const std::string& path, Communicator& comm) {
  SilenceHdf5Errors();
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open checkpoint ", path));
    char head[9] = {};
    in.read(head, sizeof(head));
    RETURN_IF_ERROR(
        CheckSuperblock(absl::string_view(head, static_cast<size_t>(in.gcount())), path));
  }
  H5File out;
  out.path = path;
  ASSIGN_OR_RETURN(H5Handle fapl, AccessList(comm, /*collective_metadata=*/false, &out.mpio));
  ASSIGN_OR_RETURN(
      out.file,
      H5Handle::Own(USINE_HDF5_ID(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.id())), H5Fclose));
  return out;
}

absl::StatusOr<H5File> OpenH5FileImage(absl::string_view bytes, absl::string_view name) {
  SilenceHdf5Errors();
  RETURN_IF_ERROR(CheckSuperblock(bytes.substr(0, 9), name));
  H5File out;
  out.path = std::string(name);
  ASSIGN_OR_RETURN(H5Handle fapl,
                   H5Handle::Own(USINE_HDF5_ID(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose));
  RETURN_IF_ERROR(
      USINE_HDF5_STATUS(H5Pset_fapl_core(fapl.id(), 64 << 10, /*backing_store=*/false)));
  // HDF5 copies the image, so `bytes` need not outlive the file.
  RETURN_IF_ERROR(USINE_HDF5_STATUS(
      H5Pset_file_image(fapl.id(), const_cast<char*>(bytes.data()), bytes.size())));
  ASSIGN_OR_RETURN(
      out.file,
      H5Handle::Own(USINE_HDF5_ID(H5Fopen(out.path.c_str(), H5F_ACC_RDONLY, fapl.id())), H5Fclose));
  return out;
}

absl::StatusOr<H5Handle> TransferList(const H5File& file) {
  ASSIGN_OR_RETURN(H5Handle xfer,
                   H5Handle::Own(USINE_HDF5_ID(H5Pcreate(H5P_DATASET_XFER)), H5Pclose));
  if (file.mpio) {
    RETURN_IF_ERROR(USINE_HDF5_STATUS(H5Pset_dxpl_mpio(xfer.id(), H5FD_MPIO_COLLECTIVE)));
  }
  return xfer;
}

}  // namespace usine::checkpoint_internal
