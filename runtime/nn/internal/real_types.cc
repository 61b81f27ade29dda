#include "runtime/nn/internal/real_types.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/matmul.h"

namespace usine::nn_internal {

absl::Status CheckLayerPlacement(DType dtype, Device device, absl::string_view what) {
  if (dtype != DType::kF32 && dtype != DType::kF64) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": layers compute in f32 or f64, not ", DTypeName(dtype)));
  }
  if (device.is_cpu()) return absl::OkStatus();
  if (!BuiltWithCuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": ", device.ToString(), " needs a build of usine with CUDA"));
  }
  if (dtype != DType::kF32) {
    return absl::UnimplementedError(
        absl::StrCat(what, ": the CUDA layers compute in f32, not ", DTypeName(dtype)));
  }
  return WithContext(CheckDeviceAvailable(device), what);
}

absl::Status CheckLogitsPlacement(DType dtype, Device device, absl::string_view what) {
  if (dtype == DType::kBF16 && device.is_cuda()) {
    return CheckLayerPlacement(DType::kF32, device, what);
  }
  return CheckLayerPlacement(dtype, device, what);
}

absl::Status CheckLayerInput(const Tensor& x, DType dtype, Device device, int64_t last_dim,
                             absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(x, what));
  RETURN_IF_ERROR(CheckDType(x, dtype, what));
  RETURN_IF_ERROR(CheckDevice(x, device, what));
  if (x.rank() < 1 || x.dim(x.rank() - 1) != last_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a last dimension of ", last_dim, ", got ", x.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status CheckProductInput(const Tensor& x, DType dtype, Device device, int64_t last_dim,
                               absl::string_view what) {
  const DType operand = ProductOperandDType(dtype, device);
  return CheckLayerInput(x, x.defined() && x.dtype() == operand ? operand : dtype, device, last_dim,
                         what);
}

}  // namespace usine::nn_internal
