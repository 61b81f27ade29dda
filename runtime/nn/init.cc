#include "runtime/nn/init.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/random.h"

namespace usine {

absl::Status ParameterInitializer::Normal(const Tensor& t, double stddev) {
  RETURN_IF_ERROR(CheckDefined(t, "ParameterInitializer::Normal tensor"));
  if (options_.draw) RETURN_IF_ERROR(Draw(t, stddev));
  offset_ += static_cast<uint64_t>(t.numel());
  return absl::OkStatus();
}

absl::Status ParameterInitializer::Draw(const Tensor& t, double stddev) const {
  if (t.dtype() != DType::kF64) {
    return RandomNormal(t, seed_, offset_, 0.0f, static_cast<float>(stddev));
  }
  RETURN_IF_ERROR(CheckDevice(t, Device::Cpu(), "ParameterInitializer::Normal f64 tensor"));
  ASSIGN_OR_RETURN(Tensor draws, Tensor::Empty(t.shape(), DType::kF32));
  RETURN_IF_ERROR(RandomNormal(draws, seed_, offset_, 0.0f, static_cast<float>(stddev)));
  const float* in = static_cast<const float*>(draws.raw_data());
  double* out = static_cast<double*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = in[i];
  return absl::OkStatus();
}

}  // namespace usine
