// What the GPT benchmarks (`usine bench train`, `usine bench attention`) share: their device and
// kernel flags.
#ifndef USINE_RUNTIME_CLI_INTERNAL_BENCH_OPTIONS_H_
#define USINE_RUNTIME_CLI_INTERNAL_BENCH_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"

#include "CLI/CLI.hpp"
#include "runtime/core/device.h"
#include "runtime/nn/attention.h"

namespace usine::cli_internal {

// The flags of where and how a benchmark's layers compute, as strings the parse checks.
struct KernelFlags {
  std::string device = "cpu";
  std::string matmul_precision = "f32";
  std::string attention = "unfused";
};

// Adds --device, --matmul-precision (with `precision_help`) and --attention to `app`.
void AddKernelFlags(CLI::App& app, KernelFlags& flags, const std::string& precision_help);

// The flags' device (the cpu, or CUDA device 0: FailedPrecondition saying why there is none)
// after setting the products' precision (SetF32MatmulPrecision), and their attention kernel.
struct KernelChoice {
  Device device;
  AttentionKernel attention = AttentionKernel::kUnfused;
};
[[nodiscard]] absl::StatusOr<KernelChoice> ApplyKernelFlags(const KernelFlags& flags);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_BENCH_OPTIONS_H_
