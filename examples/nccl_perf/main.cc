// nccl_perf: usine's NCCL backend against raw NCCL calls of the same sizes, in the same run,
// on one GPU (a world of one: NCCL runs one rank per GPU), in the manner of nccl-tests.
//
//   nccl_perf                                  # 8 B .. 256 MiB, every operation
//   nccl_perf --ops=allreduce --min_bytes=1048576
//
// For each operation and size, two figures each for usine and for raw NCCL on a communicator
// of its own (ncclCommInitAll), both on one stream of the device:
//  - "sync": the mean time of a call that returns once its result is ready (usine: the
//    synchronous call; raw: the NCCL call then cudaStreamSynchronize) -- what a step that
//    waits for one collective pays;
//  - "queued": `iters` calls enqueued back to back, then one wait (usine: the async calls,
//    then Wait on each Work; raw: the calls, then one cudaStreamSynchronize) -- the device
//    time per call once launches overlap.
// The two alternate `rounds` times and each keeps its best. "ratio" is raw time / usine time
// (1.0 = as fast as raw NCCL). Algorithm bandwidth is bytes / time (the larger buffer's
// bytes, f32). A world of one moves no data between GPUs: out-of-place calls copy on the
// device, in-place calls do nothing, so these figures measure the call path, not a network.
// "check" verifies every element of the last result.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <nccl.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"

#include "collectives/nccl/nccl_communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"

ABSL_FLAG(int64_t, min_bytes, 8, "smallest size");
ABSL_FLAG(int64_t, max_bytes, int64_t{256} << 20, "largest size");
ABSL_FLAG(int, step_factor, 4, "size multiplier between rows");
ABSL_FLAG(int, iters, 50, "calls per timing");
ABSL_FLAG(int, rounds, 5, "alternations of usine and raw; each keeps its best");
ABSL_FLAG(std::string, ops, "allreduce,reducescatter,allgather,broadcast", "operations");

namespace usine {
namespace {

constexpr Device kGpu = Device::Cuda(0);

void Check(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "nccl_perf: %s: %s\n", what, std::string(status.message()).c_str());
  std::exit(1);
}
void CheckCuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "nccl_perf: %s: %s\n", what, cudaGetErrorString(err));
  std::exit(1);
}
void CheckNccl(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  std::fprintf(stderr, "nccl_perf: %s: %s\n", what, ncclGetErrorString(result));
  std::exit(1);
}

double Seconds(const std::function<void()>& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Op {
  std::string name;
  // usine's call, asynchronous; and the raw NCCL call on `stream`.
  std::function<absl::StatusOr<std::unique_ptr<Work>>(const Tensor&, const Tensor&)> usine;
  std::function<ncclResult_t(const Tensor&, const Tensor&, cudaStream_t)> raw;
};

std::vector<Op> Ops(NcclCommunicator& comm, ncclComm_t raw) {
  const auto f32 = [](const Tensor& t) { return static_cast<size_t>(t.numel()); };
  return {
      {"allreduce",
       [&comm](const Tensor& s, const Tensor& r) {
         return comm.AllReduceAsync(s, r, ReduceOp::kSum);
       },
       [raw, f32](const Tensor& s, const Tensor& r, cudaStream_t st) {
         return ncclAllReduce(s.raw_data(), r.raw_data(), f32(s), ncclFloat32, ncclSum, raw, st);
       }},
      {"reducescatter",
       [&comm](const Tensor& s, const Tensor& r) {
         return comm.ReduceScatterAsync(s, r, ReduceOp::kSum);
       },
       [raw, f32](const Tensor& s, const Tensor& r, cudaStream_t st) {
         return ncclReduceScatter(s.raw_data(), r.raw_data(), f32(r), ncclFloat32, ncclSum, raw,
                                  st);
       }},
      {"allgather", [&comm](const Tensor& s, const Tensor& r) { return comm.AllGatherAsync(s, r); },
       [raw, f32](const Tensor& s, const Tensor& r, cudaStream_t st) {
         return ncclAllGather(s.raw_data(), r.raw_data(), f32(s), ncclFloat32, raw, st);
       }},
      {"broadcast",
       [&comm](const Tensor& s, const Tensor& r) { return comm.BroadcastAsync(r, /*root=*/0); },
       [raw, f32](const Tensor& s, const Tensor& r, cudaStream_t st) {
         return ncclBroadcast(r.raw_data(), r.raw_data(), f32(r), ncclFloat32, 0, raw, st);
       }},
  };
}

struct Timing {
  double sync = 1e30, queued = 1e30;
};

Timing TimeUsine(const Op& op, const Tensor& send, const Tensor& recv, int iters) {
  Timing t;
  t.sync = Seconds([&] {
             for (int i = 0; i < iters; ++i) {
               auto work = op.usine(send, recv);
               Check(work.status(), "usine call");
               Check((*work)->Wait(), "usine wait");
             }
           }) /
           iters;
  t.queued = Seconds([&] {
               std::vector<std::unique_ptr<Work>> works;
               works.reserve(iters);
               for (int i = 0; i < iters; ++i) {
                 auto work = op.usine(send, recv);
                 Check(work.status(), "usine call");
                 works.push_back(std::move(*work));
               }
               for (auto& work : works) Check(work->Wait(), "usine wait");
             }) /
             iters;
  return t;
}

Timing TimeRaw(const Op& op, const Tensor& send, const Tensor& recv, cudaStream_t stream,
               int iters) {
  Timing t;
  t.sync = Seconds([&] {
             for (int i = 0; i < iters; ++i) {
               CheckNccl(op.raw(send, recv, stream), "raw call");
               CheckCuda(cudaStreamSynchronize(stream), "raw sync");
             }
           }) /
           iters;
  t.queued = Seconds([&] {
               for (int i = 0; i < iters; ++i) CheckNccl(op.raw(send, recv, stream), "raw call");
               CheckCuda(cudaStreamSynchronize(stream), "raw sync");
             }) /
             iters;
  return t;
}

// Every element of `recv` equals the input pattern (a world of one hands back its own data).
bool Verify(const Tensor& recv) {
  Tensor host = Tensor::Empty({recv.numel()}, DType::kF32).value();
  Check(Copy(recv, host), "read back");
  const float* values = host.host_span<float>().value().data();
  for (int64_t i = 0; i < recv.numel(); ++i) {
    if (values[i] != static_cast<float>(i % 251)) return false;
  }
  return true;
}

int Run() {
  if (CudaDeviceCount() == 0) {
    std::fprintf(stderr, "nccl_perf: no CUDA device: %s\n", CudaUnavailableReason().c_str());
    return 1;
  }
  auto comm = NcclCommunicator::Create(nullptr, kGpu, "world");
  Check(comm.status(), "NcclCommunicator::Create");
  ncclComm_t raw = nullptr;
  const int devices[] = {0};
  CheckNccl(ncclCommInitAll(&raw, 1, devices), "ncclCommInitAll");
  cudaStream_t raw_stream = nullptr;
  CheckCuda(cudaStreamCreateWithFlags(&raw_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  int version = 0;
  ncclGetVersion(&version);
  cudaDeviceProp prop{};
  CheckCuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");

  const int iters = absl::GetFlag(FLAGS_iters);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const std::vector<std::string> wanted = absl::StrSplit(absl::GetFlag(FLAGS_ops), ',');
  std::printf("# usine nccl_perf: world of one on %s, NCCL %d, f32, %d calls x %d rounds\n",
              prop.name, version, iters, rounds);
  std::printf("# %12s %11s %11s %11s %9s %11s %11s %9s %11s %6s\n", "op", "bytes", "usine us",
              "raw us", "ratio", "usine q us", "raw q us", "q ratio", "q algbw GB/s", "check");
  for (const Op& op : Ops(**comm, raw)) {
    if (std::find(wanted.begin(), wanted.end(), op.name) == wanted.end()) continue;
    for (int64_t bytes = absl::GetFlag(FLAGS_min_bytes); bytes <= absl::GetFlag(FLAGS_max_bytes);
         bytes *= absl::GetFlag(FLAGS_step_factor)) {
      const int64_t n = std::max<int64_t>(bytes / 4, 1);
      // The larger buffer holds n elements; in a world of one both hold n.
      Tensor send = Tensor::Empty({n}, DType::kF32, kGpu).value();
      Tensor recv = Tensor::Empty({n}, DType::kF32, kGpu).value();
      Tensor pattern = Tensor::Empty({n}, DType::kF32).value();
      float* p = pattern.host_span<float>().value().data();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i % 251);
      Check(Copy(pattern, send), "fill send");
      Check(Copy(pattern, recv), "fill recv");  // broadcast works in place on recv
      const int calls = bytes >= (int64_t{64} << 20) ? std::max(iters / 5, 5) : iters;
      TimeUsine(op, send, recv, 3);  // warm-up
      TimeRaw(op, send, recv, raw_stream, 3);
      Timing usine_best, raw_best;
      for (int r = 0; r < rounds; ++r) {
        const Timing u = TimeUsine(op, send, recv, calls);
        const Timing w = TimeRaw(op, send, recv, raw_stream, calls);
        usine_best.sync = std::min(usine_best.sync, u.sync);
        usine_best.queued = std::min(usine_best.queued, u.queued);
        raw_best.sync = std::min(raw_best.sync, w.sync);
        raw_best.queued = std::min(raw_best.queued, w.queued);
      }
      Check(Fill(recv, -1.0), "poison recv");
      if (op.name == "broadcast") Check(Copy(pattern, recv), "refill recv");
      auto last = op.usine(send, recv);
      Check(last.status(), "usine call");
      Check((*last)->Wait(), "usine wait");
      const bool ok = Verify(recv);
      std::printf("  %12s %11lld %11.1f %11.1f %9.3f %11.1f %11.1f %9.3f %11.1f %6s\n",
                  op.name.c_str(), static_cast<long long>(n * 4), usine_best.sync * 1e6,
                  raw_best.sync * 1e6, raw_best.sync / usine_best.sync, usine_best.queued * 1e6,
                  raw_best.queued * 1e6, raw_best.queued / usine_best.queued,
                  n * 4 / usine_best.queued / 1e9, ok ? "ok" : "WRONG");
      std::fflush(stdout);
      if (!ok) return 1;
    }
  }
  CheckCuda(cudaStreamDestroy(raw_stream), "cudaStreamDestroy");
  CheckNccl(ncclCommDestroy(raw), "ncclCommDestroy");
  return 0;
}

}  // namespace
}  // namespace usine

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return usine::Run();
}
