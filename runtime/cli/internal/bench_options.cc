#include "runtime/cli/internal/bench_options.h"

#include "absl/strings/str_cat.h"

#include "runtime/cli/internal/command_line.h"
#include "runtime/kernels/matmul.h"

namespace usine::cli_internal {

void AddKernelFlags(CLI::App& app, KernelFlags& flags, const std::string& precision_help) {
  AddFlag(app, "--device", flags.device, "where the model runs", "DEVICE")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  AddFlag(app, "--matmul-precision", flags.matmul_precision, precision_help, "P")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}));
  AddFlag(app, "--attention", flags.attention,
          "the CUDA attention kernel (AttentionKernel; flash: CUDA only)", "KERNEL")
      ->check(CLI::IsMember({"unfused", "flash"}));
}

absl::StatusOr<KernelChoice> ApplyKernelFlags(const KernelFlags& flags) {
  KernelChoice choice{.device = Device::Cpu(),
                      .attention = flags.attention == "flash" ? AttentionKernel::kFlash
                                                              : AttentionKernel::kUnfused};
  if (flags.device == "cuda") {
    if (CudaDeviceCount() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--device cuda: no CUDA device (", CudaUnavailableReason(), ")"));
    }
    choice.device = Device::Cuda(0);
  }
  SetF32MatmulPrecision(
      MatmulPrecisionNamed(flags.matmul_precision).value_or(MatmulPrecision::kF32));
  return choice;
}

}  // namespace usine::cli_internal
