// hdf5_layout_perf: the measurement behind the checkpoint format's dataset layout
// (docs/checkpoint-format.md): the same tensors written to one HDF5 file with parallel HDF5 and
// collective MPI-IO, as contiguous datasets (usine's choice) or chunked ones, then read back.
//
//   mpirun -np 2 hdf5_layout_perf --dir /tmp --mib 512 --tensor-mib 64 --rounds 3
//
// Each tensor is [rows, 1024] f32, split by rows over the ranks (a TP-style piece per rank).
// Layouts: "contiguous"; "chunk=piece" (one chunk per rank's piece); "chunk=1MiB" (1 MiB
// chunks of whole rows). For each: write (create, collective write, close, fsync) and read
// (open, collective read of the same pieces, close) in MB/s, the best of --rounds, rounds
// alternating the layouts. Files are aligned to 4 MiB as usine's are. Rank 0 prints.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

namespace {

struct Flags {
  std::string dir = "/tmp";
  long mib = 512, tensor_mib = 64, rounds = 3;
};

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    if (name == "--dir")
      f.dir = value;
    else if (name == "--mib")
      f.mib = std::atol(value.c_str());
    else if (name == "--tensor-mib")
      f.tensor_mib = std::atol(value.c_str());
    else if (name == "--rounds")
      f.rounds = std::atol(value.c_str());
    else {
      std::fprintf(stderr, "hdf5_layout_perf: unknown flag %s\n", name.c_str());
      std::exit(2);
    }
  }
  if (f.mib < f.tensor_mib || f.tensor_mib < 1 || f.rounds < 1) {
    std::fprintf(stderr, "hdf5_layout_perf: need --mib >= --tensor-mib >= 1, --rounds >= 1\n");
    std::exit(2);
  }
  return f;
}

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "hdf5_layout_perf: %s failed\n", what);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

struct Layout {
  const char* name;
  hsize_t chunk_rows;  // 0: contiguous.
};

// Seconds for `body`, the slowest rank's.
template <typename F>
double Timed(F body) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  body();
  double seconds = MPI_Wtime() - start;
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return seconds;
}

hid_t AccessList() {
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
  H5Pset_alignment(fapl, 1 << 20, 4 << 20);
  H5Pset_all_coll_metadata_ops(fapl, true);
  H5Pset_coll_metadata_write(fapl, true);
  return fapl;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Flags f = Parse(argc, argv);
  const hsize_t cols = 1024, rows = static_cast<hsize_t>(f.tensor_mib) * 256;
  const hsize_t mine = rows / size, first = mine * rank;
  const long tensors = f.mib / f.tensor_mib;
  std::vector<float> piece(mine * cols), back(mine * cols);
  for (size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<float>((i * 7 + rank) % 1009);
  const Layout layouts[] = {{"contiguous", 0}, {"chunk=piece", mine}, {"chunk=1MiB", 256}};
  const std::string path = f.dir + "/hdf5_layout_perf.h5";
  double best_write[3] = {1e30, 1e30, 1e30}, best_read[3] = {1e30, 1e30, 1e30};
  const hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  const hsize_t file_dims[2] = {rows, cols}, piece_dims[2] = {mine, cols};
  const hsize_t start[2] = {first, 0};
  for (long round = 0; round < f.rounds; ++round) {
    for (int l = 0; l < 3; ++l) {
      const Layout& layout = layouts[l];
      const double w = Timed([&] {
        const hid_t fapl = AccessList();
        const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        Check(file >= 0, "H5Fcreate");
        const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        // As usine's writer: storage allocated at creation, never filled (every byte is written).
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
        if (layout.chunk_rows > 0) {
          const hsize_t chunk[2] = {layout.chunk_rows, cols};
          H5Pset_chunk(dcpl, 2, chunk);
        }
        for (long t = 0; t < tensors; ++t) {
          const hid_t space = H5Screate_simple(2, file_dims, nullptr);
          const std::string name = "t" + std::to_string(t);
          const hid_t dataset = H5Dcreate2(file, name.c_str(), H5T_NATIVE_FLOAT, space, H5P_DEFAULT,
                                           dcpl, H5P_DEFAULT);
          Check(dataset >= 0, "H5Dcreate2");
          H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, piece_dims, nullptr);
          const hid_t memory = H5Screate_simple(2, piece_dims, nullptr);
          Check(H5Dwrite(dataset, H5T_NATIVE_FLOAT, memory, space, xfer, piece.data()) >= 0,
                "H5Dwrite");
          H5Sclose(memory);
          H5Dclose(dataset);
          H5Sclose(space);
        }
        H5Pclose(dcpl);
        Check(H5Fclose(file) >= 0, "H5Fclose");
        H5Pclose(fapl);
        if (rank == 0) {
          const int fd = ::open(path.c_str(), O_RDONLY);
          Check(fd >= 0 && ::fsync(fd) == 0, "fsync");
          ::close(fd);
        }
      });
      const double r = Timed([&] {
        const hid_t fapl = AccessList();
        const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
        Check(file >= 0, "H5Fopen");
        for (long t = 0; t < tensors; ++t) {
          const std::string name = "t" + std::to_string(t);
          const hid_t dataset = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
          const hid_t space = H5Dget_space(dataset);
          H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, piece_dims, nullptr);
          const hid_t memory = H5Screate_simple(2, piece_dims, nullptr);
          Check(H5Dread(dataset, H5T_NATIVE_FLOAT, memory, space, xfer, back.data()) >= 0,
                "H5Dread");
          H5Sclose(memory);
          H5Sclose(space);
          H5Dclose(dataset);
        }
        Check(H5Fclose(file) >= 0, "H5Fclose");
        H5Pclose(fapl);
      });
      Check(std::memcmp(back.data(), piece.data(), piece.size() * sizeof(float)) == 0,
            "reading back the same values");
      best_write[l] = std::min(best_write[l], w);
      best_read[l] = std::min(best_read[l], r);
    }
  }
  if (rank == 0) {
    const double mb = static_cast<double>(tensors) * rows * cols * 4 / 1e6;
    std::printf(
        "# hdf5_layout_perf: %d rank%s, %ld tensors of %ld MiB (%.0f MB), %s, best of %ld\n", size,
        size == 1 ? "" : "s", tensors, f.tensor_mib, mb, f.dir.c_str(), f.rounds);
    std::printf("# %12s %14s %14s\n", "layout", "write MB/s", "read MB/s");
    for (int l = 0; l < 3; ++l) {
      std::printf("  %12s %14.0f %14.0f\n", layouts[l].name, mb / best_write[l], mb / best_read[l]);
    }
  }
  std::remove(path.c_str());
  H5Pclose(xfer);
  MPI_Finalize();
  return 0;
}
