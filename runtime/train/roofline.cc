#include "runtime/train/roofline.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "runtime/core/parallel_for.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/random.h"
#include "runtime/train/flops.h"

namespace usine {
namespace {

constexpr int kWarmups = 2;
constexpr int kTimings = 5;
// Calls per timing on a GPU, so that the launch and the wait are a small part of each.
constexpr int kGpuCallsPerTiming = 5;

// The median seconds of one call of `run`, the stream drained before and after each timing.
absl::StatusOr<double> MedianSecondsPerCall(const Stream& stream, int calls_per_timing,
                                            absl::FunctionRef<absl::Status()> run) {
  std::vector<double> seconds;
  for (int i = 0; i < kWarmups + kTimings; ++i) {
    RETURN_IF_ERROR(stream.Synchronize());
    const absl::Time start = absl::Now();
    for (int call = 0; call < calls_per_timing; ++call) RETURN_IF_ERROR(run());
    RETURN_IF_ERROR(stream.Synchronize());
    if (i >= kWarmups) {
      seconds.push_back(absl::ToDoubleSeconds(absl::Now() - start) / calls_per_timing);
    }
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  // Work too small for the clock to see is no measurement.
  if (!(median > 0)) return absl::InternalError("the work took no measurable time");
  return median;
}

}  // namespace

double FloorSeconds(const OpCost& cost, const DeviceRates& rates) {
  return std::max(cost.flops / rates.flops_per_second, cost.bytes / rates.bytes_per_second);
}

absl::StatusOr<double> MeasureProductRate(Device device, int64_t n) {
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("product size ", n, " < 1"));
  if (device.is_cpu()) return MeasureCpuMatmulFlops(n);
  const DType dtype = F32MatmulPrecision() == MatmulPrecision::kBf16 ? DType::kBF16 : DType::kF32;
  const Stream stream = Stream::Default(device);
  ASSIGN_OR_RETURN(Tensor a, Tensor::Empty({n, n}, dtype, device));
  ASSIGN_OR_RETURN(Tensor b, Tensor::Empty({n, n}, dtype, device));
  ASSIGN_OR_RETURN(Tensor c, Tensor::Empty({n, n}, dtype, device));
  RETURN_IF_ERROR(RandomUniform(a, 1, 0, -1.0f, 1.0f, stream));
  RETURN_IF_ERROR(RandomUniform(b, 2, 0, -1.0f, 1.0f, stream));
  ASSIGN_OR_RETURN(const double seconds, MedianSecondsPerCall(stream, kGpuCallsPerTiming, [&] {
                     return Matmul(a, b, c, {}, stream);
                   }));
  const auto size = static_cast<double>(n);
  return 2.0 * size * size * size / seconds;
}

absl::StatusOr<double> MeasureCopyBandwidth(Device device, int64_t bytes) {
  if (bytes < 4 || bytes % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("copy of ", bytes, " bytes: need a positive multiple of 4"));
  }
  const int64_t elements = bytes / 4;
  ASSIGN_OR_RETURN(Tensor from, Tensor::Empty({elements}, DType::kF32, device));
  ASSIGN_OR_RETURN(Tensor to, Tensor::Empty({elements}, DType::kF32, device));
  const Stream stream = Stream::Default(device);
  RETURN_IF_ERROR(RandomUniform(from, 3, 0, -1.0f, 1.0f, stream));
  absl::StatusOr<double> seconds;
  if (device.is_cpu()) {
    // Both buffers were written by the fill (from) or will be by the warm-ups (to), so no
    // timing sees a first touch of a page.
    const auto* source = static_cast<const char*>(from.raw_data());
    auto* destination = static_cast<char*>(to.raw_data());
    seconds = MedianSecondsPerCall(stream, 1, [&] {
      ParallelFor(elements, /*grain=*/1 << 16, [&](int64_t begin, int64_t end) {
        std::memcpy(destination + 4 * begin, source + 4 * begin, 4 * (end - begin));
      });
      return absl::OkStatus();
    });
  } else {
    seconds =
        MedianSecondsPerCall(stream, kGpuCallsPerTiming, [&] { return Copy(from, to, stream); });
  }
  RETURN_IF_ERROR(seconds.status());
  return 2.0 * static_cast<double>(bytes) / *seconds;
}

}  // namespace usine
