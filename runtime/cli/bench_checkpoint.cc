// `usine bench checkpoint`: what a checkpoint costs, against what the machine can do with the
// same bytes in the same run:
//   stall  — Save()'s time in the training thread, vs a plain copy of the pieces (goal <= 1.2x)
//   write  — the background write + commit, vs `dd ... conv=fsync` of the same bytes to the same
//            file system (goal >= 0.8x)
//   load   — LoadLatest (checksums verified), vs read() of the same file into memory of its
//            size from the tensors' allocator (goal >= 0.8x); read() into malloc's memory and
//            dd's read into one 1 MiB buffer are shown too
// Runs alone or under mpirun (each rank holds 1/size of the tensors, TP-style). With
// --device cuda the tensors live on each rank's GPU and the stall's peer is a copy of the
// pieces into pinned host memory (the snapshot's own path). --saves iterations measure the
// stall and the write, then as many the loads; the best of each is shown. Rank 0 runs dd
// and prints.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"

#include "CLI/CLI.hpp"
#include "checkpoint/checkpointer.h"
#include "collectives/byte_exchange.h"
#include "runtime/cli/internal/benchmarks.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/core/allocator.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/launch/world.h"

namespace usine::cli_internal {
namespace {

constexpr char kDescription[] =
    "Benchmarks: `checkpoint` saves and loads a model of --mib MiB (f32 tensors of\n"
    "--tensor-mib MiB, split over the ranks, on the cpu or each rank's GPU) in --dir, and\n"
    "compares with a copy (into pinned host memory from a GPU) and dd.";

struct BenchFlags {
  std::string dir = "/tmp/usine-bench-checkpoint";
  int64_t mib = 512;
  int64_t tensor_mib = 64;
  int64_t saves = 3;
  std::string device = "cpu";
};

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// Seconds that `command` (a shell command) took, or an error.
absl::StatusOr<double> TimeShell(const std::string& command) {
  const absl::Time start = absl::Now();
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed"));
  }
  return Seconds(absl::Now() - start);
}

// Seconds to read the file at `path` into `buffer` (of the file's size, pages touched).
absl::StatusOr<double> TimeRead(const std::string& path, absl::Span<char> buffer) {
  if (std::filesystem::file_size(path) != buffer.size()) {
    return absl::InternalError(absl::StrCat(path, " is not ", buffer.size(), " bytes"));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path));
  const absl::Time start = absl::Now();
  size_t done = 0;
  while (done < buffer.size()) {
    const ssize_t n =
        ::read(fd, buffer.data() + done, std::min<size_t>(8 << 20, buffer.size() - done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const double seconds = Seconds(absl::Now() - start);
  ::close(fd);
  if (done != buffer.size()) return absl::InternalError(absl::StrCat("short read of ", path));
  return seconds;
}

absl::StatusOr<StateDict> MakeState(const World& world, const BenchFlags& f) {
  StateDict state;
  const int64_t rows = f.tensor_mib * 256;  // Rows of 1024 f32.
  const int64_t mine = rows / world.size();
  for (int64_t t = 0; t < f.mib / f.tensor_mib; ++t) {
    ASSIGN_OR_RETURN(Tensor host, Tensor::Empty({mine, 1024}, DType::kF32));
    ASSIGN_OR_RETURN(absl::Span<float> values, host.host_span<float>());
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 4099) + t;
    Tensor piece = host;
    if (!world.device().is_cpu()) {
      ASSIGN_OR_RETURN(piece, Tensor::Empty(host.shape(), host.dtype(), world.device()));
      RETURN_IF_ERROR(Copy(host, piece));
    }
    RETURN_IF_ERROR(state.AddShard(absl::StrCat("layer", t, "/w"), piece,
                                   Shape{mine * world.size(), 1024}, {mine * world.rank(), 0}));
  }
  state.SetInt("step", 0);
  return state;
}

absl::Status RunCheckpoint(World& world, const BenchFlags& f) {
  if (f.mib < f.tensor_mib || f.tensor_mib < 1 || f.saves < 1) {
    return absl::InvalidArgumentError("need --mib >= --tensor-mib >= 1 and --saves >= 1");
  }
  // Every rank's local work (allocations, rank 0's peers) is agreed on before the next
  // collective, which the others would otherwise wait in for a rank that failed.
  absl::StatusOr<StateDict> made = MakeState(world, f);
  RETURN_IF_ERROR(AgreeOnStatus(world.comm(), made.status()));
  StateDict& state = *made;
  const double bytes = static_cast<double>(state.piece_bytes()) * world.size();
  CheckpointerOptions options;
  options.directory = f.dir;
  options.retention.keep_last = 1;
  ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Create(world.comm(), options));

  // The plain copy of the same pieces, into buffers already touched (as Save's are): host
  // memory for host pieces, pinned host memory for device pieces.
  std::vector<Tensor> copies;
  const auto make_copies = [&]() -> absl::Status {
    for (const auto& [name, e] : state.tensors()) {
      for (const TensorPiece& p : e.pieces) {
        ASSIGN_OR_RETURN(Tensor copy, p.tensor.device().is_cpu()
                                          ? Tensor::Empty(p.tensor.shape(), p.tensor.dtype())
                                          : Tensor::Empty(p.tensor.shape(), p.tensor.dtype(),
                                                          PinnedHostAllocator()));
        std::memset(copy.raw_data(), 1, copy.nbytes());
        copies.push_back(std::move(copy));
      }
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(AgreeOnStatus(world.comm(), make_copies()));
  const int64_t mib = static_cast<int64_t>(bytes) >> 20;
  double copy_s = 1e9, stall_s = 1e9, write_s = 1e9, load_s = 1e9, dd_write = 1e9, dd_read = 1e9,
         read_s = 1e9;
  // read()'s peers: memory from the allocator the tensors come from, and from malloc. On the
  // development VM the kernel copies into malloc's (16 bytes past a page) faster than into
  // 256-byte-aligned memory (docs/BENCHMARKS.md); the load is held to the first.
  Tensor file_tensor;
  std::vector<char> file_vector;
  double read_vector_s = 1e9;
  SaveTimings best;
  for (int64_t i = 0; i < f.saves; ++i) {
    // Both the copy and Save start together on every rank (they share the memory bandwidth).
    RETURN_IF_ERROR(world.comm().Barrier());
    absl::Time start = absl::Now();
    size_t k = 0;
    for (const auto& [name, e] : state.tensors()) {
      for (const TensorPiece& p : e.pieces) RETURN_IF_ERROR(Copy(p.tensor, copies[k++]));
    }
    copy_s = std::min(copy_s, Seconds(absl::Now() - start));
    RETURN_IF_ERROR(world.comm().Barrier());
    start = absl::Now();
    RETURN_IF_ERROR(ckpt->Save(i + 1, state));
    stall_s = std::min(stall_s, Seconds(absl::Now() - start));
    RETURN_IF_ERROR(ckpt->Wait());
    RETURN_IF_ERROR(world.comm().Barrier());
    const SaveTimings t = ckpt->last_save_timings();
    if (Seconds(t.write + t.commit) < write_s) {
      write_s = Seconds(t.write + t.commit);
      best = t;
    }
    // The peer, in the same iteration (the disk of a shared VM varies from minute to minute).
    absl::Status peer;
    if (world.rank() == 0) {
      const std::string file = absl::StrCat(f.dir, "/dd.bin");
      absl::StatusOr<double> w = TimeShell(absl::StrCat(
          "dd if=/dev/zero of=", file, " bs=1M count=", mib, " conv=fsync status=none"));
      std::filesystem::remove(file);
      peer = w.status();
      if (w.ok()) dd_write = std::min(dd_write, *w);
    }
    RETURN_IF_ERROR(AgreeOnStatus(world.comm(), peer));
  }
  // Loads after the saves, each next to its peers: a load right after a save would share
  // the machine with the file system's work on the deleted checkpoint.
  for (int64_t i = 0; i < f.saves; ++i) {
    RETURN_IF_ERROR(world.comm().Barrier());
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(int64_t step, ckpt->LoadLatest(state));
    load_s = std::min(load_s, Seconds(absl::Now() - start));
    const auto time_peers = [&]() -> absl::Status {
      const std::string path = CheckpointPath(f.dir, step);
      ASSIGN_OR_RETURN(double r,
                       TimeShell(absl::StrCat("dd if=", path, " of=/dev/null bs=1M status=none")));
      const int64_t size = static_cast<int64_t>(std::filesystem::file_size(path));
      if (static_cast<int64_t>(file_tensor.nbytes()) != size) {
        ASSIGN_OR_RETURN(file_tensor, Tensor::Empty({size}, DType::kU8));
        std::memset(file_tensor.raw_data(), 1, file_tensor.nbytes());
        file_vector.assign(static_cast<size_t>(size), 1);
      }
      ASSIGN_OR_RETURN(double m,
                       TimeRead(path, absl::MakeSpan(static_cast<char*>(file_tensor.raw_data()),
                                                     static_cast<size_t>(size))));
      ASSIGN_OR_RETURN(double v, TimeRead(path, absl::MakeSpan(file_vector)));
      dd_read = std::min(dd_read, r);
      read_s = std::min(read_s, m);
      read_vector_s = std::min(read_vector_s, v);
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(
        AgreeOnStatus(world.comm(), world.rank() == 0 ? time_peers() : absl::OkStatus()));
  }
  // Loads without checksums, from a Checkpointer of their own (one at a time per process).
  ckpt.reset();
  options.verify_on_load = false;
  ASSIGN_OR_RETURN(ckpt, Checkpointer::Create(world.comm(), options));
  double unverified_s = 1e9;
  for (int64_t i = 0; i < f.saves; ++i) {
    RETURN_IF_ERROR(world.comm().Barrier());
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(ckpt->LoadLatest(state).status());
    unverified_s = std::min(unverified_s, Seconds(absl::Now() - start));
  }
  if (world.rank() == 0) {
    const double mb = bytes / 1e6;
    absl::PrintF("usine bench checkpoint: %d rank%s, %.0f MB in %d tensors on %s, %s, best of %d\n",
                 world.size(), world.size() == 1 ? "" : "s", mb, state.tensors().size(),
                 world.device().ToString(), f.dir, f.saves);
    absl::PrintF("  stall  Save() %8.1f ms   copy %8.1f ms   ratio %.2f  (goal <= 1.2)\n",
                 stall_s * 1e3, copy_s * 1e3, stall_s / copy_s);
    absl::PrintF("  write  %8.0f MB/s   dd conv=fsync %8.0f MB/s   ratio %.2f  (goal >= 0.8)\n",
                 mb / write_s, mb / dd_write, dd_write / write_s);
    absl::PrintF(
        "         file %.1f ms (checksums included), commit %.1f ms (fsync, rename, latest);\n"
        "         then retention %.1f ms (deleting the previous checkpoint), not counted\n",
        Seconds(best.write) * 1e3, Seconds(best.commit) * 1e3, Seconds(best.retention) * 1e3);
    absl::PrintF(
        "  load   %8.0f MB/s   read() into memory %8.0f MB/s   ratio %.2f  (goal >= 0.8)\n",
        mb / load_s, mb / read_s, read_s / load_s);
    absl::PrintF(
        "         without checksums %.0f MB/s, ratio %.2f; read() into malloc's memory %.0f"
        " MB/s;\n         dd of the file to /dev/null (1 MiB buffer) %.0f MB/s\n",
        mb / unverified_s, read_s / unverified_s, mb / read_vector_s, mb / dd_read);
  }
  return absl::OkStatus();
}

// Sets `world` up and runs; `world` stays null when that fails.
absl::Status Run(const BenchFlags& flags, std::unique_ptr<World>& world) {
  WorldOptions world_options;
  world_options.bind_device = flags.device == "cuda";
  ASSIGN_OR_RETURN(world, World::Init(world_options));
  if (flags.device == "cuda" && world->device().is_cpu()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device cuda: no CUDA device (", CudaUnavailableReason(), ")"));
  }
  return RunCheckpoint(*world, flags);
}

}  // namespace

cli::Command AddBenchCheckpoint(CLI::App& bench) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* app =
      bench.add_subcommand("checkpoint", "checkpoint stall, write and load vs copy, dd and read()");
  app->footer(kDescription);
  AddFlag(*app, "--dir", flags->dir, "where the checkpoints and dd's file go", "DIR");
  AddFlag(*app, "--mib", flags->mib, "model size in MiB (all ranks)", "N");
  AddFlag(*app, "--tensor-mib", flags->tensor_mib, "size of each tensor in MiB", "N");
  AddFlag(*app, "--saves", flags->saves, "saves and loads; the best is shown", "N");
  AddFlag(*app, "--device", flags->device, "where the tensors live", "DEVICE")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  return {app, [flags] {
            std::unique_ptr<World> world;
            const absl::Status status = Run(*flags, world);
            if (!status.ok() && (world == nullptr || world->rank() == 0)) {
              std::fprintf(stderr, "usine bench checkpoint: %s\n",
                           std::string(status.message()).c_str());
            }
            return status.ok() ? 0 : 1;
          }};
}

}  // namespace usine::cli_internal
