// allreduce_perf: usine's collectives against the raw MPI calls of the same sizes, in the same
// run, in the manner of nccl-tests' all_reduce_perf; then GradientReducer's overlap.
//
//   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 allreduce_perf
//   mpirun -np 2 allreduce_perf --ops=allreduce --min_bytes=1048576 --max_bytes=268435456
//
// For each operation and size: the mean time of a synchronous usine call and of the raw MPI
// call (the slowest rank's mean over `iters` calls; the two alternate 5 times and each keeps
// its best), algorithm and bus
// bandwidth (nccl-tests' definitions), the ratio raw/usine (1.0 = as fast as raw MPI), and a
// check of every element of a verifiable result. Sizes are the larger buffer's bytes (f32).
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <mpi.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "collectives/communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "examples/allreduce_perf/reducer_overlap.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/launch/world.h"

ABSL_FLAG(int64_t, min_bytes, 8, "smallest size");
ABSL_FLAG(int64_t, max_bytes, int64_t{256} << 20, "largest size");
ABSL_FLAG(int, step_factor, 4, "size multiplier between rows");
ABSL_FLAG(int, iters, 20, "calls per timing (fewer for large sizes, at least 3)");
ABSL_FLAG(std::string, ops, "allreduce,reducescatter,allgather,broadcast", "operations");
ABSL_FLAG(bool, reducer, true, "also measure GradientReducer's overlap with a backward pass");
ABSL_FLAG(int, reducer_layers, 4, "overlap experiment: transformer-like layers");
ABSL_FLAG(int, reducer_hidden, 768, "overlap experiment: hidden size");
ABSL_FLAG(int, reducer_tokens, 1024, "overlap experiment: tokens per backward");

namespace usine {
namespace {

struct Case {
  std::string op;
  Tensor send, recv;  // recv == send for the in-place calls.
  std::function<absl::Status()> usine_call;
  std::function<int()> raw_call;
  double bus_factor;  // busbw = algbw * bus_factor
};

// The slowest rank's mean seconds per call over `iters` calls.
double TimeCalls(const std::function<void()>& call, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i) call();
  double elapsed = (MPI_Wtime() - start) / iters;
  MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return elapsed;
}

// Fills the inputs with rank + 1 (the broadcast root with 7), runs the usine call once and
// checks every element of the result.
absl::StatusOr<bool> Check(const Case& c, Communicator& comm) {
  const int rank = comm.rank(), size = comm.size();
  RETURN_IF_ERROR(Fill(c.send, c.op == "broadcast" ? (rank == 0 ? 7 : 0) : rank + 1.0));
  RETURN_IF_ERROR(c.usine_call());
  ASSIGN_OR_RETURN(absl::Span<float> out, c.recv.host_span<float>());
  const float sum = size * (size + 1) / 2.0f;
  const int64_t chunk = c.op == "allgather" ? c.send.numel() : 0;
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    const float want = c.op == "allgather"   ? static_cast<float>(i / chunk + 1)
                       : c.op == "broadcast" ? 7.0f
                                             : sum;
    if (out[i] != want) return false;
  }
  return true;
}

absl::StatusOr<Case> MakeCase(const std::string& op, int64_t bytes, MpiCommunicator& comm) {
  const int size = comm.size();
  const int64_t total = std::max<int64_t>(bytes / 4, size);
  Case c;
  c.op = op;
  if (op == "allreduce" || op == "broadcast") {
    ASSIGN_OR_RETURN(c.send, Tensor::Empty({total}, DType::kF32));
    c.recv = c.send;
  } else {
    const int64_t chunk = total / size;
    ASSIGN_OR_RETURN(Tensor whole, Tensor::Empty({chunk * size}, DType::kF32));
    ASSIGN_OR_RETURN(Tensor part, Tensor::Empty({chunk}, DType::kF32));
    c.send = op == "reducescatter" ? whole : part;
    c.recv = op == "reducescatter" ? part : whole;
  }
  const MPI_Comm raw = comm.mpi_comm();
  float* send = static_cast<float*>(c.send.raw_data());
  float* recv = static_cast<float*>(c.recv.raw_data());
  const int send_count = static_cast<int>(c.send.numel());
  const int recv_count = static_cast<int>(c.recv.numel());
  const double n = size;
  if (op == "allreduce") {
    c.usine_call = [&comm, c] { return comm.AllReduce(c.send, ReduceOp::kSum); };
    c.raw_call = [=] {
      return MPI_Allreduce(MPI_IN_PLACE, send, send_count, MPI_FLOAT, MPI_SUM, raw);
    };
    c.bus_factor = 2 * (n - 1) / n;
  } else if (op == "reducescatter") {
    c.usine_call = [&comm, c] { return comm.ReduceScatter(c.send, c.recv, ReduceOp::kSum); };
    c.raw_call = [=] {
      return MPI_Reduce_scatter_block(send, recv, recv_count, MPI_FLOAT, MPI_SUM, raw);
    };
    c.bus_factor = (n - 1) / n;
  } else if (op == "allgather") {
    c.usine_call = [&comm, c] { return comm.AllGather(c.send, c.recv); };
    c.raw_call = [=] {
      return MPI_Allgather(send, send_count, MPI_FLOAT, recv, send_count, MPI_FLOAT, raw);
    };
    c.bus_factor = (n - 1) / n;
  } else if (op == "broadcast") {
    c.usine_call = [&comm, c] { return comm.Broadcast(c.send, 0); };
    c.raw_call = [=] { return MPI_Bcast(send, send_count, MPI_FLOAT, 0, raw); };
    c.bus_factor = 1;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown op '", op, "'"));
  }
  return c;
}

absl::Status Run() {
  ASSIGN_OR_RETURN(std::unique_ptr<World> world, World::Init());
  if (world->comm().backend() != "mpi") {
    return absl::FailedPreconditionError("run allreduce_perf under mpirun (it compares with MPI)");
  }
  auto& comm = static_cast<MpiCommunicator&>(world->comm());
  const bool root = world->rank() == 0;
  if (root) {
    std::printf("# usine allreduce_perf: %d ranks on %d node-local slots, %s backend, f32\n",
                world->size(), world->local_size(), std::string(comm.backend()).c_str());
    std::printf("# %12s %12s %14s %12s %12s %14s %8s %6s\n", "op", "bytes", "usine us",
                "algbw GB/s", "busbw GB/s", "raw MPI us", "ratio", "check");
  }
  for (const std::string& op :
       std::vector<std::string>(absl::StrSplit(absl::GetFlag(FLAGS_ops), ','))) {
    for (int64_t bytes = absl::GetFlag(FLAGS_min_bytes); bytes <= absl::GetFlag(FLAGS_max_bytes);
         bytes *= absl::GetFlag(FLAGS_step_factor)) {
      ASSIGN_OR_RETURN(Case c, MakeCase(op, bytes, comm));
      const int64_t timed_bytes = static_cast<int64_t>(std::max(c.send.nbytes(), c.recv.nbytes()));
      const int iters = static_cast<int>(std::clamp<int64_t>(
          (int64_t{1} << 31) / std::max<int64_t>(timed_bytes, 1), 3, absl::GetFlag(FLAGS_iters)));
      RETURN_IF_ERROR(c.usine_call());  // Warm up both paths.
      c.raw_call();
      // The two alternate, 5 times, and each keeps its best: neither gains from going second.
      absl::Status status = absl::OkStatus();
      double usine_s = 1e30, raw_s = 1e30;
      for (int rep = 0; rep < 5; ++rep) {
        usine_s = std::min(usine_s, TimeCalls([&] { status.Update(c.usine_call()); }, iters));
        raw_s = std::min(raw_s, TimeCalls([&] { c.raw_call(); }, iters));
      }
      RETURN_IF_ERROR(status);
      ASSIGN_OR_RETURN(const bool ok, Check(c, comm));
      if (root) {
        const double algbw = timed_bytes / usine_s / 1e9;
        std::printf("  %12s %12lld %14.1f %12.3f %12.3f %14.1f %8.3f %6s\n", op.c_str(),
                    static_cast<long long>(timed_bytes), usine_s * 1e6, algbw, algbw * c.bus_factor,
                    raw_s * 1e6, raw_s / usine_s, ok ? "ok" : "WRONG");
      }
      if (!ok)
        return absl::DataLossError(absl::StrCat(op, " of ", timed_bytes, " bytes: wrong result"));
    }
  }
  if (absl::GetFlag(FLAGS_reducer)) {
    RETURN_IF_ERROR(MeasureReducerOverlap(
        *world, {absl::GetFlag(FLAGS_reducer_layers), absl::GetFlag(FLAGS_reducer_hidden),
                 absl::GetFlag(FLAGS_reducer_tokens)}));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace usine

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::Status status = usine::Run(); !status.ok()) usine::World::Abort(status);
  return 0;
}
