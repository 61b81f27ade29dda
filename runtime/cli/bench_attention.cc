// `usine bench attention`: the speed of causal self-attention's core (softmax(q k^T / sqrt(D))
// v per head, forward and backward, between c_attn and c_proj) in a GPT-2 attention layer,
// next to PyTorch's attention kernels on the same shape, device and dtype
// (scripts/bench/torch_attention.py), run in the same invocation on the same machine.
//
// usine's side is a CausalSelfAttention layer as a training step runs it: --reps forward and
// backward passes after --warmup, timed op by op (OpTimeline), of which the "attn.core" ops
// are read; on CUDA under bf16 products with the flash kernel, q|k|v, the output and the
// gradients are bf16, as in training.
//
// FLOPs are those of the causal half's products: the forward pass's two (q k^T, p v), the
// backward pass's four (dp, dq, dk, dv); a kernel's recomputed scores are not counted, so the
// rates of kernels that recompute and of those that keep the probabilities compare.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
#include "runtime/cli/internal/bench_options.h"
#include "runtime/cli/internal/benchmarks.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/cli/internal/subprocess.h"
#include "runtime/core/op_timeline.h"
#include "runtime/core/parallel_for.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stream.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/random.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/init.h"

namespace usine::cli_internal {
namespace {

constexpr char kDescription[] =
    "Times the core of a GPT-2 attention layer (the causal softmax(q k^T / sqrt(D)) v of every\n"
    "head, forward and backward) as a training step runs it, then PyTorch's attention kernels\n"
    "on the same shape, device and dtype (--peer; on CUDA each scaled_dot_product_attention\n"
    "backend), and prints each side's milliseconds, FLOP rate (of the causal half's products:\n"
    "two forward, four backward) and usine's ratio to each peer. On the cpu both sides use\n"
    "usine's threads (USINE_CPU_THREADS, else OPENBLAS_NUM_THREADS, else every core).";

struct AttentionFlags {
  int64_t batch = 4;
  int64_t seq = 256;
  int64_t heads = 4;
  int64_t embd = 256;
  int64_t reps = 10;
  int64_t warmup = 3;
  KernelFlags kernel;
  std::string peer = "scripts/bench/torch_attention.py";
  std::string python;
};

// Milliseconds of the forward and backward passes' cores, each the mean of `reps`.
struct CoreTimes {
  double forward_ms = 0;
  double backward_ms = 0;
};

absl::StatusOr<CoreTimes> TimeUsine(const AttentionFlags& f, const KernelChoice& kernel) {
  const Device device = kernel.device;
  ParameterInitializer init(1337);
  ASSIGN_OR_RETURN(
      auto layer,
      CausalSelfAttention::Create(
          {.n_embd = f.embd, .n_head = f.heads, .device = device, .kernel = kernel.attention},
          init));
  ASSIGN_OR_RETURN(const Tensor x, Tensor::Empty({f.batch, f.seq, f.embd}, DType::kF32, device));
  ASSIGN_OR_RETURN(const Tensor dy, Tensor::Empty({f.batch, f.seq, f.embd}, DType::kF32, device));
  RETURN_IF_ERROR(RandomUniform(x, 7, 0, -1.0f, 1.0f));
  RETURN_IF_ERROR(RandomUniform(dy, 8, 0, -1.0f, 1.0f));
  const auto pass = [&]() -> absl::Status {
    RETURN_IF_ERROR(layer->Forward(x).status());
    return layer->Backward(dy).status();
  };
  for (int64_t i = 0; i < f.warmup; ++i) RETURN_IF_ERROR(pass());
  RETURN_IF_ERROR(Stream::Default(device).Synchronize());
  RETURN_IF_ERROR(OpTimeline::Start(device));
  for (int64_t i = 0; i < f.reps; ++i) {
    if (absl::Status status = pass(); !status.ok()) {
      (void)OpTimeline::Stop();
      return status;
    }
  }
  ASSIGN_OR_RETURN(const std::vector<OpTime> ops, OpTimeline::Stop());
  CoreTimes times;
  for (const OpTime& op : ops) {
    if (op.name == "attn.core forward") times.forward_ms = op.milliseconds / op.count;
    if (op.name == "attn.core backward") times.backward_ms = op.milliseconds / op.count;
  }
  if (times.forward_ms <= 0 || times.backward_ms <= 0) {
    return absl::InternalError("the layer marked no attn.core forward and backward ops");
  }
  return times;
}

// One side's line: its milliseconds and FLOP rates forward and backward, in TFLOP/s on a GPU
// and GFLOP/s on the cpu.
void PrintSide(absl::string_view name, double forward_ms, double backward_ms, double forward_flops,
               Device device) {
  const double unit = device.is_cpu() ? 1e9 : 1e12;
  const char* rate = device.is_cpu() ? "GFLOP/s" : "TFLOP/s";
  absl::PrintF("  %-18s forward %8.3f ms %7.1f %s   backward %8.3f ms %7.1f %s\n", name, forward_ms,
               forward_flops / forward_ms * 1e3 / unit, rate, backward_ms,
               2 * forward_flops / backward_ms * 1e3 / unit, rate);
}

// Runs the peer script and prints a line per kernel it timed, with usine's ratios; or why
// there are none.
void RunAndPrintPeer(const AttentionFlags& f, Device device, const CoreTimes& usine,
                     double forward_flops) {
  const bool bf16 = !device.is_cpu() && F32MatmulPrecision() == MatmulPrecision::kBf16;
  const std::string command = absl::StrCat(
      ShellQuote(PeerPython(f.python, "torch")), " ", ShellQuote(PeerScript(f.peer)), " --batch ",
      f.batch, " --seq ", f.seq, " --heads ", f.heads, " --head-dim ", f.embd / f.heads,
      " --device ", f.kernel.device, " --dtype ", bf16 ? "bf16" : "f32", " --reps ", f.reps,
      " --warmup ", f.warmup, device.is_cpu() ? absl::StrCat(" --threads ", CpuThreads()) : "");
  absl::StatusOr<nlohmann::json> peer = RunPeerJson(command);
  if (peer.ok() && !(peer->contains("kernels") && (*peer)["kernels"].is_array() &&
                     peer->contains("torch") && (*peer)["torch"].is_string())) {
    peer = absl::InternalError(absl::StrCat("unexpected output of `", command, "`"));
  }
  if (!peer.ok()) {
    absl::PrintF("  PyTorch not measured: %s\n", peer.status().message());
    return;
  }
  absl::PrintF("  PyTorch %s, %s%s:\n", (*peer)["torch"].get<std::string>(), bf16 ? "bf16" : "f32",
               device.is_cpu() ? absl::StrCat(", ", CpuThreads(), " threads") : "");
  for (const nlohmann::json& kernel : (*peer)["kernels"]) {
    const std::string name = kernel.value("name", std::string("?"));
    const double forward_ms = kernel.value("forward_ms", 0.0);
    const double backward_ms = kernel.value("backward_ms", 0.0);
    if (forward_ms <= 0 || backward_ms <= 0) {
      absl::PrintF("  %-18s not measured: %s\n", name, kernel.value("error", std::string("?")));
      continue;
    }
    PrintSide(name, forward_ms, backward_ms, forward_flops, device);
    absl::PrintF("  %-18s forward %.2fx, backward %.2fx, both %.2fx\n",
                 absl::StrCat("usine / ", name, ":"), forward_ms / usine.forward_ms,
                 backward_ms / usine.backward_ms,
                 (forward_ms + backward_ms) / (usine.forward_ms + usine.backward_ms));
  }
}

absl::Status RunAttention(const AttentionFlags& f) {
  if (f.batch < 1 || f.seq < 1 || f.heads < 1 || f.embd < 1 || f.reps < 1 || f.warmup < 0) {
    return absl::InvalidArgumentError(
        "need --batch, --seq, --heads, --embd and --reps >= 1, --warmup >= 0");
  }
  if (f.embd % f.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--heads ", f.heads, " does not divide --embd ", f.embd));
  }
  ASSIGN_OR_RETURN(const KernelChoice kernel, ApplyKernelFlags(f.kernel));
  const Device device = kernel.device;
  ASSIGN_OR_RETURN(const CoreTimes usine, TimeUsine(f, kernel));
  // q k^T and p v over the causal half: T (T + 1) / 2 scores per head, 2 D FLOPs each.
  const double forward_flops = 2.0 * 2.0 * static_cast<double>(f.batch * f.heads) *
                               static_cast<double>(f.seq * (f.seq + 1) / 2) *
                               static_cast<double>(f.embd / f.heads);
  absl::PrintF(
      "usine bench attention: B=%d T=%d, %d heads of %d, on %s%s, %s products, mean of %d "
      "passes after %d\n",
      f.batch, f.seq, f.heads, f.embd / f.heads, device.ToString(),
      device.is_cpu() ? absl::StrCat(" (", CpuThreads(), " threads)")
                      : absl::StrCat(", ", f.kernel.attention, " attention"),
      MatmulPrecisionName(F32MatmulPrecision()), f.reps, f.warmup);
  absl::PrintF("  %.2f GFLOP forward, %.2f backward (the causal half's products)\n",
               forward_flops / 1e9, 2 * forward_flops / 1e9);
  PrintSide("usine attn.core", usine.forward_ms, usine.backward_ms, forward_flops, device);
  if (!f.peer.empty()) RunAndPrintPeer(f, device, usine, forward_flops);
  return absl::OkStatus();
}

}  // namespace

cli::Command AddBenchAttention(CLI::App& bench) {
  auto flags = std::make_shared<AttentionFlags>();
  CLI::App* app = bench.add_subcommand(
      "attention", "causal attention's forward and backward vs PyTorch's kernels");
  app->footer(kDescription);
  AddFlag(*app, "--batch", flags->batch, "sequences", "B");
  AddFlag(*app, "--seq", flags->seq, "tokens per sequence", "T");
  AddFlag(*app, "--heads", flags->heads, "attention heads", "H");
  AddFlag(*app, "--embd", flags->embd, "width (heads of --embd / --heads)", "C");
  AddFlag(*app, "--reps", flags->reps, "timed passes (the mean is shown)", "N");
  AddFlag(*app, "--warmup", flags->warmup, "untimed passes first", "N");
  AddKernelFlags(*app, flags->kernel,
                 "what products compute in (SetF32MatmulPrecision; the peer runs in bf16 for "
                 "bf16 on CUDA, else f32)");
  AddFlag(*app, "--peer", flags->peer, "the PyTorch peer script ('' to skip it)", "SCRIPT");
  AddFlag(*app, "--python", flags->python,
          "the peer's Python (default: the first of python3 and /usr/bin/python3 that has torch)",
          "PATH");
  return {app, [flags] { return ExitCode("usine bench attention", RunAttention(*flags)); }};
}

}  // namespace usine::cli_internal
