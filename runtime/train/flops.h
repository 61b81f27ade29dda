// The numerator and denominator of MFU (model FLOPs utilisation): the FLOPs a GPT's training
// step needs per token, and the peak FLOP/s of the device it runs on.
//
//   const double flops_per_token = TrainingFlopsPerToken(config, seq_len);
//   ASSIGN_OR_RETURN(PeakFlops peak, DevicePeakFlops(device, {.precision =
//   MatmulPrecision::kBf16}));
//   // MFU = tokens/s (all ranks) * flops_per_token / (*peak.flops_per_second * ranks)
//
// FLOPs per token follow PaLM's appendix B (and nanoGPT, llm.c): 6 N + 12 L C T, where N
// counts the parameters a token is multiplied by (every parameter but the position embedding;
// the token embedding, tied to the output projection, once, with its padded vocabulary),
// 6 = 2 (multiply-add) x 3 (forward, and backward's two products), and 12 L C T is
// attention's scores and weighted sum at sequence length T, forward and backward, the causal
// mask not discounted. Recomputed activations are not counted: MFU counts the model's FLOPs,
// not the hardware's.
#ifndef USINE_RUNTIME_TRAIN_FLOPS_H_
#define USINE_RUNTIME_TRAIN_FLOPS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/device.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/gpt_config.h"

namespace usine {

// N above: padded_vocab C + L (12 C^2 + 13 C) + 2 C (the weights and biases of q|k|v, the
// attention and MLP projections, the two layer norms per block, and the final layer norm).
// Equal to the element count of Gpt::Parameters() without wpe.
int64_t MatmulParameterCount(const GptConfig& config);

// 6 N + 12 L C T at T = `seq_len`. REQUIRES: config.Validate() is OK; seq_len >= 1.
double TrainingFlopsPerToken(const GptConfig& config, int64_t seq_len);

// The dense (no 2:4 sparsity) peak FLOP/s of one NVIDIA GPU from NVIDIA's datasheets, found
// by the name CUDA gives it ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "NVIDIA H200",
// ...): A100 (SXM and PCIe), H100 SXM, PCIe and NVL, H200 (and GH200) and H200 NVL.
// nullopt for a GPU not in the table.
std::optional<double> GpuPeakFlops(absl::string_view device_name, MatmulPrecision precision);

// The cpu's attainable peak: the FLOP/s of an f32 [n, n] x [n, n] product (OpenBLAS sgemm
// cut as Matmul cuts it, at CpuThreads(), whatever F32MatmulPrecision() says), the median of 5
// after 2 warm-ups.
// Takes about 14 n^3 / rate seconds (a second for n = 2048 at 100 GFLOP/s).
[[nodiscard]] absl::StatusOr<double> MeasureCpuMatmulFlops(int64_t n = 2048);

struct PeakFlopsOptions {
  // A peak to use instead of the table or the measurement (FLOP/s of one device). Default: none.
  std::optional<double> override_flops_per_second = std::nullopt;
  MatmulPrecision precision = MatmulPrecision::kF32;  // Default: f32.
  int64_t cpu_matrix_size = 2048;                     // n of MeasureCpuMatmulFlops. Default: 2048.
};

struct PeakFlops {
  std::optional<double> flops_per_second =
      std::nullopt;  // of one device; nullopt: unknown (MFU is "n/a")
  // Where it comes from, for the run's log: "override", "NVIDIA H100 80GB HBM3, bf16 dense
  // (datasheet)", "sgemm 2048^3 measured at 16 threads", "'Tesla T4': not in the peak table".
  std::string source;
};

// The peak of `device`: the override if given, else the table for a CUDA device and the
// measured sgemm rate for the cpu. Errors only when the measurement fails.
[[nodiscard]] absl::StatusOr<PeakFlops> DevicePeakFlops(Device device,
                                                        const PeakFlopsOptions& options = {});

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_FLOPS_H_
