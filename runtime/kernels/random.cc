#include "runtime/kernels/random.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/dispatch.h"

namespace usine {

namespace ki = kernels_internal;

absl::Status RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high,
                           const Stream& stream) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(t, "RandomUniform tensor"));
  if (!(low <= high)) {
    return absl::InvalidArgumentError(absl::StrCat("RandomUniform: low ", low, " > high ", high));
  }
  if (t.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "RandomUniform", t.device(), stream,
      [&] { ki::cpu::RandomUniform(t, seed, offset, low, high); },
      [&](StreamHandle s) { return ki::cuda::RandomUniform(t, seed, offset, low, high, s); });
}

absl::Status RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev,
                          const Stream& stream) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(t, "RandomNormal tensor"));
  if (!(stddev >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("RandomNormal: stddev ", stddev, " < 0"));
  }
  if (t.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "RandomNormal", t.device(), stream,
      [&] { ki::cpu::RandomNormal(t, seed, offset, mean, stddev); },
      [&](StreamHandle s) { return ki::cuda::RandomNormal(t, seed, offset, mean, stddev, s); });
}

}  // namespace usine
