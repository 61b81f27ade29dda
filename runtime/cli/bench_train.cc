// `usine bench train`: the speed of a GPT training step (forward, backward, clip, AdamW) next
// to the same model, batch and step in PyTorch (scripts/bench/torch_gpt_train.py) and, given an
// llm.c checkout, in llm.c's trainer (scripts/bench/llmc_gpt_train.py), run in the same
// invocation on the same machine; and, on the cpu, the achieved FLOP rate as a share of
// the machine's sgemm rate measured in the same run (docs/BENCHMARKS.md records the figures).
//
// FLOPs per token: 6 N + 12 L C T (TrainingFlopsPerToken, runtime/train/flops.h, which the
// Trainer's MFU uses too); the sgemm rate is the better of OpenBLAS on its own threads and
// of usine's Matmul (OpenBLAS single-threaded, cut over ParallelFor's threads).
//
// The step's two floors (runtime/train/roofline.h): its FLOPs over the device's product rate
// (on the cpu that sgemm rate, on CUDA a Matmul of 8192^3 in the step's precision) and its
// least bytes (runtime/train/step_cost.h) over the device's copy bandwidth, both measured in
// the same run; with --profile, each op's time next to its own floor.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

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
#include "runtime/kernels/cpu_gemm.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/random.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/train/flops.h"
#include "runtime/train/roofline.h"
#include "runtime/train/step_cost.h"

namespace usine::cli_internal {
namespace {

constexpr char kDescription[] =
    "Times training steps of a GPT (forward, backward, clip at 1.0, AdamW) on random tokens,\n"
    "then the same model, batch and step in PyTorch (--peer) and, with --llmc, in llm.c's\n"
    "trainer, and prints tokens/s, the achieved GFLOP/s and, on the cpu, its share of the\n"
    "sgemm rate measured in the same run;\n"
    "then the step's floors: its FLOPs at the measured product rate, its least bytes at the\n"
    "measured copy bandwidth, and each op at the slower of the two (with --profile, per op).\n"
    "On the cpu every side uses usine's threads (USINE_CPU_THREADS, else OPENBLAS_NUM_THREADS,\n"
    "else every core; set OPENBLAS_NUM_THREADS, which OpenBLAS reads too). --layers, --heads and "
    "--embd override the --model preset (0 keeps it).";

struct TrainFlags {
  std::string model = "gpt2";
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t embd = 256;
  int64_t batch = 4;
  int64_t seq = 256;
  int64_t steps = 5;
  int64_t warmup = 2;
  KernelFlags kernel;
  std::string peer = "scripts/bench/torch_gpt_train.py";
  std::string python;  // Empty: the first of python3 and /usr/bin/python3 with the peer's need.
  std::string llmc;    // An llm.c checkout: its trainer is the second peer. Empty: none.
  std::string llmc_peer = "scripts/bench/llmc_gpt_train.py";
  bool compile = false;
  bool profile = false;
  int64_t product_size = 0;  // 0: 2048 on the cpu, 8192 on CUDA.
  int64_t copy_mib = 0;      // 0: 256 on the cpu, 1024 on CUDA.
};

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The median seconds of one sgemm of [n, n] x [n, n] on the cpu: cut as Matmul cuts it over
// usine's threads (whatever the products' precision) or, with blas_threads > 0, on OpenBLAS's
// own threads.
absl::StatusOr<double> SgemmSeconds(int64_t n, int blas_threads) {
  ASSIGN_OR_RETURN(Tensor a, Tensor::Empty({n, n}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor b, Tensor::Empty({n, n}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor c, Tensor::Empty({n, n}, DType::kF32));
  RETURN_IF_ERROR(RandomUniform(a, 1, 0, -1.0f, 1.0f));
  RETURN_IF_ERROR(RandomUniform(b, 2, 0, -1.0f, 1.0f));
  std::vector<double> times;
  for (int i = 0; i < 7; ++i) {
    const absl::Time start = absl::Now();
    const auto* pa = static_cast<const float*>(a.raw_data());
    const auto* pb = static_cast<const float*>(b.raw_data());
    auto* pc = static_cast<float*>(c.raw_data());
    if (blas_threads > 0) {
      CpuGemmOnBlasThreads(blas_threads, false, false, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pc, n);
    } else {
      CpuGemm(false, false, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pc, n);
    }
    if (i >= 2) times.push_back(Seconds(absl::Now() - start));
  }
  return Median(times);
}

struct StepTimes {
  std::vector<double> forward, backward, optimizer, step;
  double loss = 0;
  std::vector<OpTime> ops;  // One more step, op by op (--profile).
};

absl::StatusOr<StepTimes> TimeUsine(const GptConfig& config, const TrainFlags& f, Device device,
                                    AttentionKernel attention) {
  ASSIGN_OR_RETURN(
      auto model,
      Gpt::Create({.config = config, .seed = 1337, .device = device, .attention = attention}));
  ASSIGN_OR_RETURN(auto optimizer, AdamW::Create(model->Parameters()));
  ASSIGN_OR_RETURN(Tensor ids, Tensor::Empty({f.batch, f.seq + 1}, DType::kF32));
  RETURN_IF_ERROR(RandomUniform(ids, 7, 0, 0.0f, static_cast<float>(config.vocab_size)));
  ASSIGN_OR_RETURN(Tensor tokens, Tensor::Empty({f.batch, f.seq + 1}, DType::kI32));
  {
    ASSIGN_OR_RETURN(absl::Span<float> from, ids.host_span<float>());
    ASSIGN_OR_RETURN(absl::Span<int32_t> to, tokens.host_span<int32_t>());
    for (size_t i = 0; i < to.size(); ++i) {
      to[i] = std::min(static_cast<int32_t>(from[i]), static_cast<int32_t>(config.vocab_size - 1));
    }
  }
  const Stream stream = Stream::Default(device);
  StepTimes times;
  for (int64_t i = 0; i < f.warmup + f.steps + (f.profile ? 1 : 0); ++i) {
    RETURN_IF_ERROR(stream.Synchronize());
    const bool profiled = i == f.warmup + f.steps;
    if (profiled) RETURN_IF_ERROR(OpTimeline::Start(device));
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(model->ZeroGrad());
    ASSIGN_OR_RETURN(const double loss, model->Forward(tokens));  // It reaches the host.
    const absl::Time forward = absl::Now();
    RETURN_IF_ERROR(model->Backward());
    RETURN_IF_ERROR(stream.Synchronize());
    const absl::Time backward = absl::Now();
    // As the trainer clips (train_step.h): AdamW reads the gradients times the factor.
    ASSIGN_OR_RETURN(const double norm, ClipGradientNorm(model->Parameters(), /*max_norm=*/0));
    RETURN_IF_ERROR(optimizer->Step(3e-4, ClipFactor(norm, 1.0)));
    RETURN_IF_ERROR(stream.Synchronize());
    const absl::Time end = absl::Now();
    if (profiled) {
      ASSIGN_OR_RETURN(times.ops, OpTimeline::Stop());
      continue;
    }
    times.loss = loss;
    if (i < f.warmup) continue;
    times.forward.push_back(Seconds(forward - start));
    times.backward.push_back(Seconds(backward - forward));
    times.optimizer.push_back(Seconds(end - backward));
    times.step.push_back(Seconds(end - start));
  }
  return times;
}

// A peer's figures, from the JSON object on the last line of its output (RunPeerJson).
struct PeerFigures {
  double tokens_per_s = 0;
  double step_ms = 0;
  double loss = 0;
  std::string what;  // Its recipe, version and threads, as the line shows them.
};

// Runs `command`, a peer script, and reads its figures: tokens_per_s, step_ms, loss, recipe,
// threads and `version_key` (shown as "`version_label` <value>", and the threads only for a
// peer `on_cpu`: a GPU peer's host threads say nothing of its speed). An error says why there
// are none.
absl::StatusOr<PeerFigures> RunPeer(const std::string& command, const std::string& version_key,
                                    absl::string_view version_label, bool on_cpu) {
  ASSIGN_OR_RETURN(const nlohmann::json peer, RunPeerJson(command));
  const auto number = [&](const char* key) { return peer.contains(key) && peer[key].is_number(); };
  const auto text = [&](const std::string& key) {
    return peer.contains(key) && peer[key].is_string();
  };
  const bool complete = number("tokens_per_s") && number("step_ms") && number("loss") &&
                        number("threads") && text("recipe") && text(version_key) &&
                        peer["tokens_per_s"].get<double>() > 0;
  if (!complete) {
    return absl::InternalError(absl::StrCat("unexpected output of `", command, "`: ", peer.dump()));
  }
  return PeerFigures{.tokens_per_s = peer["tokens_per_s"].get<double>(),
                     .step_ms = peer["step_ms"].get<double>(),
                     .loss = peer["loss"].get<double>(),
                     .what = absl::StrCat(
                         peer["recipe"].get<std::string>(), ", ", version_label, " ",
                         peer[version_key].get<std::string>(),
                         on_cpu ? absl::StrCat(", ", peer["threads"].get<int>(), " threads") : "")};
}

// A peer's line, named `name`, and usine's ratio to it, followed by `goal`; or why it has none.
void PrintPeer(absl::string_view name, const absl::StatusOr<PeerFigures>& peer,
               double usine_tokens_per_s, double flops_per_token, absl::string_view goal) {
  if (!peer.ok()) {
    absl::PrintF("  %-9s not measured: %s\n", name, peer.status().message());
    return;
  }
  absl::PrintF("  %-9s %10.0f tokens/s  step %8.1f ms  %8.1f GFLOP/s  loss %.4f  (%s)\n", name,
               peer->tokens_per_s, peer->step_ms, peer->tokens_per_s * flops_per_token / 1e9,
               peer->loss, peer->what);
  absl::PrintF("  usine / %s: %.2fx%s\n", name, usine_tokens_per_s / peer->tokens_per_s, goal);
}

// The --profile table: each op's share of one more step, and its time over its floor (the
// slower of its products and its bytes at the device's rates; "-" for an op with no cost).
void PrintOpTimes(const std::vector<OpTime>& ops, const std::vector<OpCost>& costs,
                  const DeviceRates& rates, Device device) {
  double total = 0;
  for (const OpTime& op : ops) total += op.milliseconds;
  std::map<std::string, OpCost> cost_of;
  for (const OpCost& cost : costs) cost_of[cost.name] = cost;
  absl::PrintF("  where the time goes: one more step, %.1f ms timed op by op on %s%s\n", total,
               device.ToString(), device.is_cpu() ? "" : "'s default stream");
  absl::PrintF(
      "  (each op from its start to the next op's; its floor is the slower of its products\n"
      "  and its bytes at the rates above, and \"bound\" says which)\n");
  size_t width = 0;  // Of the longest name, for one column.
  for (const OpTime& op : ops) width = std::max(width, op.name.size());
  absl::PrintF("    %-*s %7s  %12s  %6s  %9s  %7s  %s\n", static_cast<int>(width), "op", "count",
               "time", "share", "floor", "x floor", "bound");
  for (const OpTime& op : ops) {
    std::string floor_text = "        -        -  -";
    if (const auto it = cost_of.find(op.name); it != cost_of.end()) {
      const double floor_ms = 1e3 * FloorSeconds(it->second, rates);
      const bool products =
          it->second.flops / rates.flops_per_second >= it->second.bytes / rates.bytes_per_second;
      floor_text = absl::StrFormat("%6.2f ms  %6.1fx  %s", floor_ms,
                                   floor_ms > 0 ? op.milliseconds / floor_ms : 0.0,
                                   products ? "products" : "memory");
    }
    absl::PrintF("    %-*s %5d x  %9.2f ms  %5.1f%%  %s\n", static_cast<int>(width), op.name,
                 op.count, op.milliseconds, total > 0 ? 100.0 * op.milliseconds / total : 0.0,
                 floor_text);
  }
}

// `value` in giga or, from 10^12, tera `unit`s: "103.1 GFLOP", "14.03 TFLOP/s".
std::string Scaled(double value, absl::string_view unit) {
  return value >= 1e12 ? absl::StrFormat("%.2f T%s", value / 1e12, unit)
                       : absl::StrFormat("%.1f G%s", value / 1e9, unit);
}

// The step's floors (roofline.h) at `rates`: all its FLOPs at the product rate, all its bytes
// at the copy bandwidth, and each op at the slower of its two, summed.
void PrintFloors(const std::vector<OpCost>& costs, const DeviceRates& rates,
                 const std::string& product_source, const std::string& copy_source, double step_s) {
  const OpCost step = TotalCost(costs);
  double op_by_op_s = 0;
  for (const OpCost& cost : costs) op_by_op_s += FloorSeconds(cost, rates);
  absl::PrintF("  floors: products %8.1f ms  (%s at %s: %s, measured)\n",
               1e3 * step.flops / rates.flops_per_second, Scaled(step.flops, "FLOP"),
               Scaled(rates.flops_per_second, "FLOP/s"), product_source);
  absl::PrintF("          memory   %8.1f ms  (%s at %s: %s, measured)\n",
               1e3 * step.bytes / rates.bytes_per_second, Scaled(step.bytes, "B"),
               Scaled(rates.bytes_per_second, "B/s"), copy_source);
  absl::PrintF(
      "          op by op %8.1f ms  (each op at the slower of its two); the step takes %.2fx "
      "it\n",
      1e3 * op_by_op_s, op_by_op_s > 0 ? step_s / op_by_op_s : 0.0);
}

absl::Status RunTrain(const TrainFlags& f) {
  ASSIGN_OR_RETURN(GptConfig config, GptConfigNamed(f.model));
  if (f.layers > 0) config.n_layer = f.layers;
  if (f.heads > 0) config.n_head = f.heads;
  if (f.embd > 0) config.n_embd = f.embd;
  config.name = absl::StrCat(f.model, "(", config.n_layer, "x", config.n_embd, ")");
  RETURN_IF_ERROR(config.Validate());
  if (f.seq < 1 || f.seq > config.block_size || f.batch < 1 || f.steps < 1 || f.warmup < 0) {
    return absl::InvalidArgumentError(absl::StrCat("need 1 <= --seq <= ", config.block_size,
                                                   ", --batch >= 1, --steps >= 1, --warmup >= 0"));
  }
  ASSIGN_OR_RETURN(const KernelChoice kernel, ApplyKernelFlags(f.kernel));
  const Device device = kernel.device;
  const int threads = CpuThreads();
  const MatmulPrecision precision = F32MatmulPrecision();
  ASSIGN_OR_RETURN(StepTimes usine, TimeUsine(config, f, device, kernel.attention));
  const double tokens = static_cast<double>(f.batch * f.seq);
  const double flops_per_token = TrainingFlopsPerToken(config, f.seq);
  const double step_s = Median(usine.step);

  absl::PrintF(
      "usine bench train: %s, %d layers, %d heads, %d wide, vocab %d, B=%d T=%d, on %s%s, %s "
      "products, median of %d steps after %d\n",
      f.model, config.n_layer, config.n_head, config.n_embd, config.vocab_size, f.batch, f.seq,
      device.ToString(),
      device.is_cpu() ? absl::StrCat(" (", threads, " threads)")
                      : absl::StrCat(", ", f.kernel.attention, " attention"),
      MatmulPrecisionName(precision), f.steps, f.warmup);
  absl::PrintF("  parameters %.2f M; %.3f GFLOP per token (6N + 12LCT)\n",
               MatmulParameterCount(config) / 1e6, flops_per_token / 1e9);
  absl::PrintF(
      "  usine     %10.0f tokens/s  step %8.1f ms (forward %.1f, backward %.1f, clip+AdamW "
      "%.1f)  %8.1f GFLOP/s  loss %.4f\n",
      tokens / step_s, step_s * 1e3, Median(usine.forward) * 1e3, Median(usine.backward) * 1e3,
      Median(usine.optimizer) * 1e3, tokens * flops_per_token / step_s / 1e9, usine.loss);
  DeviceRates rates;
  std::string product_source;
  if (device.is_cpu()) {
    // The machine's sgemm rate: the better of OpenBLAS threading the product itself and
    // usine's cut of it (cpu_gemm.h), the stricter reference of the two.
    const int64_t n = f.product_size > 0 ? f.product_size : 2048;
    const double flops = 2.0 * static_cast<double>(n * n) * static_cast<double>(n);
    ASSIGN_OR_RETURN(const double blas_s, SgemmSeconds(n, threads));
    ASSIGN_OR_RETURN(const double cut_s, SgemmSeconds(n, 0));
    rates.flops_per_second = flops / std::min(blas_s, cut_s);
    product_source = absl::StrFormat("sgemm %d^3", n);
    absl::PrintF(
        "  sgemm %dx%dx%d  %8.1f GFLOP/s on OpenBLAS's threads, %.1f cut by usine; usine's "
        "step reaches %.0f%% of the better  (goal >= 50%%)\n",
        n, n, n, flops / blas_s / 1e9, flops / cut_s / 1e9,
        100.0 * tokens * flops_per_token / step_s / rates.flops_per_second);
  } else {
    const int64_t n = f.product_size > 0 ? f.product_size : 8192;
    ASSIGN_OR_RETURN(rates.flops_per_second, MeasureProductRate(device, n));
    product_source = absl::StrFormat("Matmul %s %d^3", MatmulPrecisionName(precision), n);
  }
  const int64_t copy_mib = f.copy_mib > 0 ? f.copy_mib : device.is_cpu() ? 256 : 1024;
  ASSIGN_OR_RETURN(rates.bytes_per_second, MeasureCopyBandwidth(device, copy_mib << 20));
  const std::vector<OpCost> costs = GptStepCost(
      config,
      {.batch = f.batch,
       .seq = f.seq,
       .activation_bytes = static_cast<int>(DTypeSize(ProductOperandDType(DType::kF32, device)))});
  PrintFloors(costs, rates, product_source, absl::StrFormat("a %d MiB copy", copy_mib), step_s);
  if (f.profile) PrintOpTimes(usine.ops, costs, rates, device);
  const std::string shape = absl::StrCat(
      " --layers ", config.n_layer, " --heads ", config.n_head, " --embd ", config.n_embd,
      " --vocab ", config.vocab_size, " --block ", config.block_size, " --batch ", f.batch,
      " --seq ", f.seq, " --steps ", f.steps, " --warmup ", f.warmup, " --device ", f.kernel.device,
      device.is_cpu() ? absl::StrCat(" --threads ", threads) : "");
  if (!f.peer.empty()) {
    PrintPeer(
        "PyTorch",
        RunPeer(absl::StrCat(ShellQuote(PeerPython(f.python, "torch")), " ",
                             ShellQuote(PeerScript(f.peer)), shape, f.compile ? " --compile" : ""),
                "torch", "torch", device.is_cpu()),
        tokens / step_s, flops_per_token,
        device.is_cpu() ? "  (goal >= 2)" : "  (goal >= 1 against torch.compile)");
  }
  if (!f.llmc.empty()) {
    PrintPeer("llm.c",
              RunPeer(absl::StrCat(ShellQuote(PeerPython(f.python, "numpy")), " ",
                                   ShellQuote(PeerScript(f.llmc_peer)), " --llmc ",
                                   ShellQuote(f.llmc), shape),
                      "llmc", "commit", device.is_cpu()),
              tokens / step_s, flops_per_token, "");
  }
  return absl::OkStatus();
}

}  // namespace

cli::Command AddBenchTrain(CLI::App& bench) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* app =
      bench.add_subcommand("train", "GPT training step tokens/s vs PyTorch; FLOP rate vs sgemm");
  app->footer(kDescription);
  AddFlag(*app, "--model", flags->model, "GPT preset: tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl",
          "NAME");
  AddFlag(*app, "--layers", flags->layers, "transformer blocks (0: the preset's)", "N");
  AddFlag(*app, "--heads", flags->heads, "attention heads (0: the preset's)", "N");
  AddFlag(*app, "--embd", flags->embd, "width (0: the preset's)", "N");
  AddFlag(*app, "--batch", flags->batch, "sequences per step", "B");
  AddFlag(*app, "--seq", flags->seq, "tokens per sequence", "T");
  AddFlag(*app, "--steps", flags->steps, "timed steps (the median is shown)", "N");
  AddFlag(*app, "--warmup", flags->warmup, "untimed steps first", "N");
  AddFlag(*app, "--peer", flags->peer, "the PyTorch peer script ('' to skip it)", "SCRIPT");
  AddFlag(*app, "--python", flags->python,
          "the peers' Python (default: the first of python3 and /usr/bin/python3 that has torch, "
          "for the llm.c peer numpy)",
          "PATH");
  app->add_flag("--compile", flags->compile, "the peer uses torch.compile");
  AddFlag(*app, "--llmc", flags->llmc,
          "an llm.c checkout: its train_gpt2.c (cpu) or train_gpt2.cu (cuda) trains the same "
          "model and batch as a second peer, built and run by --llmc-peer",
          "DIR");
  AddFlag(*app, "--llmc-peer", flags->llmc_peer, "the llm.c peer script", "SCRIPT");
  AddKernelFlags(
      *app, flags->kernel,
      "what products compute in (SetF32MatmulPrecision; bf16 on the cpu is an emulation)");
  app->add_flag("--profile", flags->profile,
                "after the timed steps, time one more op by op (OpTimeline) and print the shares");
  AddFlag(*app, "--product-size", flags->product_size,
          "n of the [n, n] x [n, n] product that measures the product rate (0: 2048 on the cpu, "
          "8192 on CUDA)",
          "N")
      ->check(CLI::NonNegativeNumber);
  AddFlag(*app, "--copy-mib", flags->copy_mib,
          "MiB of the copy that measures the memory bandwidth (0: 256 on the cpu, 1024 on CUDA)",
          "MIB")
      ->check(CLI::NonNegativeNumber);
  return {app, [flags] { return ExitCode("usine bench train", RunTrain(*flags)); }};
}

}  // namespace usine::cli_internal
