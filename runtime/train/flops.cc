#include "runtime/train/flops.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "runtime/core/parallel_for.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/cpu_gemm.h"
#include "runtime/kernels/random.h"

namespace usine {
namespace {

// Dense peaks in TFLOP/s from NVIDIA's datasheets (A100: nvidia-a100-datasheet r4; H100:
// the H100 Tensor Core GPU datasheet, SXM, PCIe and NVL columns; H200: the H200 datasheet,
// SXM and NVL columns). The datasheets give tensor-core rates "with sparsity"; the dense rate
// is half of that (e.g. H100 SXM bf16: 1,979 -> 989.5). f32 is the CUDA cores' (no sparsity).
struct GpuPeakRow {
  const char* must_contain[2];  // lower-case substrings of the CUDA name ("" matches all)
  const char* model;
  double f32, tf32, bf16;
};
constexpr GpuPeakRow kGpuPeaks[] = {
    {{"h200", "nvl"}, "H200 NVL", 60, 417.5, 835.5},
    {{"h200", ""}, "H200 SXM", 67, 494.5, 989.5},  // also GH200, whose GPU is the same
    {{"h100", "nvl"}, "H100 NVL", 60, 417.5, 835.5},
    {{"h100", "pcie"}, "H100 PCIe", 51, 378, 756.5},
    {{"h100", ""}, "H100 SXM", 67, 494.5, 989.5},
    {{"a100", ""}, "A100", 19.5, 156, 312},  // SXM4 and PCIe, 40 and 80 GB alike
};

const GpuPeakRow* FindGpu(absl::string_view device_name) {
  const std::string name = absl::AsciiStrToLower(device_name);
  for (const GpuPeakRow& row : kGpuPeaks) {
    if (absl::StrContains(name, row.must_contain[0]) &&
        absl::StrContains(name, row.must_contain[1])) {
      return &row;
    }
  }
  return nullptr;
}

double Tera(const GpuPeakRow& row, MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::kF32:
      return row.f32 * 1e12;
    case MatmulPrecision::kTf32:
      return row.tf32 * 1e12;
    case MatmulPrecision::kBf16:
      return row.bf16 * 1e12;
  }
  return 0;  // Unreachable: every enumerator is handled above.
}

}  // namespace

int64_t MatmulParameterCount(const GptConfig& config) {
  const int64_t c = config.n_embd;
  return config.padded_vocab() * c + config.n_layer * (12 * c * c + 13 * c) + 2 * c;
}

double TrainingFlopsPerToken(const GptConfig& config, int64_t seq_len) {
  return 6.0 * static_cast<double>(MatmulParameterCount(config)) +
         12.0 * static_cast<double>(config.n_layer) * static_cast<double>(config.n_embd) *
             static_cast<double>(seq_len);
}

std::optional<double> GpuPeakFlops(absl::string_view device_name, MatmulPrecision precision) {
  const GpuPeakRow* row = FindGpu(device_name);
  if (row == nullptr) return std::nullopt;
  return Tera(*row, precision);
}

absl::StatusOr<double> MeasureCpuMatmulFlops(int64_t n) {
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("sgemm size ", n, " < 1"));
  ASSIGN_OR_RETURN(Tensor a, Tensor::Empty({n, n}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor b, Tensor::Empty({n, n}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor c, Tensor::Empty({n, n}, DType::kF32));
  RETURN_IF_ERROR(RandomUniform(a, 1, 0, -1.0f, 1.0f));
  RETURN_IF_ERROR(RandomUniform(b, 2, 0, -1.0f, 1.0f));
  std::vector<double> seconds;
  for (int i = 0; i < 7; ++i) {
    const absl::Time start = absl::Now();
    CpuGemm(false, false, n, n, n, 1.0f, static_cast<const float*>(a.raw_data()), n,
            static_cast<const float*>(b.raw_data()), n, 0.0f, static_cast<float*>(c.raw_data()), n);
    if (i >= 2) seconds.push_back(absl::ToDoubleSeconds(absl::Now() - start));
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  // A product too small for the clock to see is no measurement.
  if (!(median > 0)) {
    return absl::InternalError(absl::StrCat("sgemm ", n, "^3 took no measurable time"));
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / median;
}

absl::StatusOr<PeakFlops> DevicePeakFlops(Device device, const PeakFlopsOptions& options) {
  if (options.override_flops_per_second.has_value()) {
    return PeakFlops{options.override_flops_per_second, "override"};
  }
  if (device.is_cpu()) {
    ASSIGN_OR_RETURN(double rate, MeasureCpuMatmulFlops(options.cpu_matrix_size));
    return PeakFlops{rate, absl::StrFormat("sgemm %d^3 measured at %d threads",
                                           options.cpu_matrix_size, CpuThreads())};
  }
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
  std::string name;
  for (const CudaDeviceInfo& info : ListCudaDevices()) {
    if (info.index == device.index()) name = info.name;
  }
  const GpuPeakRow* row = FindGpu(name);
  if (row == nullptr) {
    return PeakFlops{std::nullopt, absl::StrCat("'", name, "': not in the peak table")};
  }
  return PeakFlops{
      Tera(*row, options.precision),
      absl::StrCat(name, " (", row->model, "), ", MatmulPrecisionName(options.precision),
                   " dense (NVIDIA datasheet)")};
}

}  // namespace usine
