#include "runtime/kernels/reduce.h"

#include <cmath>
#include <string>

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/dispatch.h"

namespace usine {
namespace {

namespace ki = kernels_internal;

absl::Status Reduce(absl::string_view op, const Tensor& x, const Tensor& out, bool l2,
                    const Stream& stream) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(x, absl::StrCat(op, " x")));
  RETURN_IF_ERROR(CheckDType(out, DType::kF32, absl::StrCat(op, " out")));
  if (out.numel() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " out: expected one element, got ", out.DebugString()));
  }
  RETURN_IF_ERROR(CheckSameDevice(x, out, absl::StrCat(op, " x"), "out"));
  return ki::Dispatch(
      op, x.device(), stream,
      [&] {
        *static_cast<float*>(out.raw_data()) =
            l2 ? std::sqrt(ki::cpu::SumOfSquares(x)) : ki::cpu::Sum(x);
      },
      [&](StreamHandle s) { return ki::cuda::Sum(x, out, l2, l2, s); });
}

absl::StatusOr<float> ReduceToHost(absl::string_view op, const Tensor& x, bool l2) {
  RETURN_IF_ERROR(CheckDefined(x, absl::StrCat(op, " x")));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty({}, DType::kF32, x.device()));
  RETURN_IF_ERROR(Reduce(op, x, out, l2, Stream::Host()));
  float value = 0;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Wrap(&value, {}, DType::kF32, Device::Cpu()));
  RETURN_IF_ERROR(Copy(out, host));
  return value;
}

}  // namespace

absl::Status Sum(const Tensor& x, const Tensor& out, const Stream& stream) {
  return Reduce("Sum", x, out, /*l2=*/false, stream);
}

absl::Status L2Norm(const Tensor& x, const Tensor& out, const Stream& stream) {
  return Reduce("L2Norm", x, out, /*l2=*/true, stream);
}

absl::Status L2Norms(absl::Span<const Tensor> xs, const Tensor& out, const Stream& stream) {
  RETURN_IF_ERROR(CheckDType(out, DType::kF32, "L2Norms out"));
  if (out.numel() != static_cast<int64_t>(xs.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("L2Norms out: expected ", xs.size(), " elements, got ", out.DebugString()));
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = absl::StrCat("L2Norms xs[", i, "]");
    RETURN_IF_ERROR(ki::CheckFloatingPoint(xs[i], what));
    RETURN_IF_ERROR(CheckSameDevice(xs[i], out, what, "out"));
    RETURN_IF_ERROR(CheckSameDType(xs[i], xs[0], what, "xs[0]"));
  }
  return ki::Dispatch(
      "L2Norms", out.device(), stream,
      [&] {
        float* norms = static_cast<float*>(out.raw_data());
        for (size_t i = 0; i < xs.size(); ++i) norms[i] = std::sqrt(ki::cpu::SumOfSquares(xs[i]));
      },
      [&](StreamHandle s) { return ki::cuda::L2Norms(xs, out, s); });
}

absl::StatusOr<float> SumToHost(const Tensor& x) { return ReduceToHost("Sum", x, false); }

absl::StatusOr<float> L2NormToHost(const Tensor& x) { return ReduceToHost("L2Norm", x, true); }

}  // namespace usine
