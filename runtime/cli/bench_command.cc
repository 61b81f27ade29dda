// `usine bench checkpoint`: what a checkpoint costs, against what the machine can do with the
// same bytes in the same run:
//   stall  — Save()'s time in the training thread, vs a plain copy of the pieces (goal <= 1.2x)
//   write  — the background write + commit, vs `dd ... conv=fsync` of the same bytes to the same
//            file system (goal >= 0.8x)
//   load   — LoadLatest, vs reading the same file with `dd` (goal >= 0.8x)
// Runs alone or under mpirun (each rank holds 1/size of the tensors, TP-style). Rank 0 prints.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "checkpoint/checkpointer.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/flag_parser.h"
#include "runtime/core/status_macros.h"
#include "runtime/launch/world.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Benchmarks: `checkpoint` saves and loads a model of --mib MiB (f32 tensors of\n"
    "--tensor-mib MiB, split over the ranks) in --dir, and compares with a copy and dd.";

struct BenchFlags {
  std::string dir = "/tmp/usine-bench-checkpoint";
  int64_t mib = 512;
  int64_t tensor_mib = 64;
  int64_t saves = 3;
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

absl::StatusOr<StateDict> MakeState(const World& world, const BenchFlags& f) {
  StateDict state;
  const int64_t rows = f.tensor_mib * 256;  // Rows of 1024 f32.
  const int64_t mine = rows / world.size();
  for (int64_t t = 0; t < f.mib / f.tensor_mib; ++t) {
    ASSIGN_OR_RETURN(Tensor piece, Tensor::Empty({mine, 1024}, DType::kF32));
    ASSIGN_OR_RETURN(absl::Span<float> values, piece.host_span<float>());
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 4099) + t;
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
  ASSIGN_OR_RETURN(StateDict state, MakeState(world, f));
  const double bytes = static_cast<double>(state.piece_bytes()) * world.size();
  CheckpointerOptions options;
  options.directory = f.dir;
  options.retention.keep_last = 1;
  ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Create(world.comm(), options));

  // The plain copy of the same pieces, into buffers already touched (as Save's are).
  std::vector<std::vector<char>> copies;
  for (const auto& [name, e] : state.tensors()) copies.emplace_back(e.piece.nbytes(), 1);
  double copy_s = 1e9, stall_s = 1e9, write_s = 1e9, load_s = 1e9;
  for (int64_t i = 0; i < f.saves; ++i) {
    absl::Time start = absl::Now();
    size_t k = 0;
    for (const auto& [name, e] : state.tensors()) {
      std::memcpy(copies[k++].data(), e.piece.raw_data(), e.piece.nbytes());
    }
    copy_s = std::min(copy_s, Seconds(absl::Now() - start));
    RETURN_IF_ERROR(world.comm().Barrier());
    start = absl::Now();
    RETURN_IF_ERROR(ckpt->Save(i + 1, state));
    stall_s = std::min(stall_s, Seconds(absl::Now() - start));
    RETURN_IF_ERROR(ckpt->Wait());
    RETURN_IF_ERROR(world.comm().Barrier());
    const SaveTimings t = ckpt->last_save_timings();
    write_s = std::min(write_s, Seconds(t.write + t.commit));
    start = absl::Now();
    ASSIGN_OR_RETURN(int64_t step, ckpt->LoadLatest(state));
    (void)step;
    load_s = std::min(load_s, Seconds(absl::Now() - start));
  }
  absl::StatusOr<double> dd_write = 0.0, dd_read = 0.0;
  if (world.rank() == 0) {
    const std::string file = absl::StrCat(f.dir, "/dd.bin");
    const int64_t mib = static_cast<int64_t>(bytes) >> 20;
    dd_write = TimeShell(
        absl::StrCat("dd if=/dev/zero of=", file, " bs=1M count=", mib, " conv=fsync status=none"));
    std::filesystem::remove(file);
    dd_read = TimeShell(absl::StrCat("dd if=", f.dir, "/", CheckpointFileName(f.saves),
                                     " of=/dev/null bs=1M status=none"));
  }
  // No collective follows: rank 0 alone reports a failed dd.
  RETURN_IF_ERROR(dd_write.status());
  RETURN_IF_ERROR(dd_read.status());
  if (world.rank() == 0) {
    const double mb = bytes / 1e6;
    absl::PrintF("usine bench checkpoint: %d rank%s, %.0f MB in %d tensors, %s, best of %d\n",
                 world.size(), world.size() == 1 ? "" : "s", mb, state.tensors().size(), f.dir,
                 f.saves);
    absl::PrintF("  stall  Save() %8.1f ms   copy %8.1f ms   ratio %.2f  (goal <= 1.2)\n",
                 stall_s * 1e3, copy_s * 1e3, stall_s / copy_s);
    absl::PrintF("  write  %8.0f MB/s   dd conv=fsync %8.0f MB/s   ratio %.2f  (goal >= 0.8)\n",
                 mb / write_s, mb / *dd_write, *dd_write / write_s);
    absl::PrintF("  load   %8.0f MB/s   dd read       %8.0f MB/s   ratio %.2f  (goal >= 0.8)\n",
                 mb / load_s, mb / *dd_read, *dd_read / load_s);
  }
  return absl::OkStatus();
}

absl::Status Run(const std::vector<std::string>& args, World& world) {
  BenchFlags flags;
  cli_internal::FlagParser parser("usine bench", "checkpoint [flags]", kDescription);
  parser.String("dir", "DIR", "where the checkpoints and dd's file go", &flags.dir);
  parser.Int("mib", "N", "model size in MiB (all ranks)", &flags.mib);
  parser.Int("tensor-mib", "N", "size of each tensor in MiB", &flags.tensor_mib);
  parser.Int("saves", "N", "saves and loads; the best is shown", &flags.saves);
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool run, parser.Parse(args, &positional));
  if (!run) {
    if (world.rank() == 0) std::fputs(parser.Help().c_str(), stdout);
    return absl::OkStatus();
  }
  if (positional != std::vector<std::string>{"checkpoint"}) {
    return absl::InvalidArgumentError("the benchmarks: checkpoint");
  }
  return RunCheckpoint(world, flags);
}

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  WorldOptions world_options;
  world_options.bind_device = false;
  absl::StatusOr<std::unique_ptr<World>> world = World::Init(world_options);
  if (!world.ok()) {
    std::fprintf(stderr, "usine bench: %s\n", std::string(world.status().message()).c_str());
    return 1;
  }
  const absl::Status status = Run(args, **world);
  if (!status.ok() && (*world)->rank() == 0) {
    std::fprintf(stderr, "usine bench: %s\n", std::string(status.message()).c_str());
  }
  return status.ok() ? 0 : 1;
}

}  // namespace usine::cli
