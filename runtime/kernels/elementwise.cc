#include "runtime/kernels/elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/dispatch.h"

namespace usine {
namespace {

namespace ki = kernels_internal;

template <typename T>
ki::FillBits Bits(T value) {
  ki::FillBits bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

template <typename Int>
absl::StatusOr<ki::FillBits> IntegerBits(double value, DType dtype) {
  // The range test is on doubles: both bounds are powers of two (or 0), exact in a double.
  const double low = static_cast<double>(std::numeric_limits<Int>::min());
  const double high_exclusive = std::ldexp(1.0, std::numeric_limits<Int>::digits);
  if (!(value == std::trunc(value) && value >= low && value < high_exclusive)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Fill: value ", value, " is not representable in ", DTypeName(dtype)));
  }
  return Bits(static_cast<Int>(value));
}

absl::StatusOr<ki::FillBits> FillValueBits(double value, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return Bits(static_cast<float>(value));
    case DType::kBF16:
      return Bits(BFloat16::FromFloat(static_cast<float>(value)));
    case DType::kF16:
      return Bits(Float16::FromFloat(static_cast<float>(value)));
    case DType::kI32:
      return IntegerBits<int32_t>(value, dtype);
    case DType::kI64:
      return IntegerBits<int64_t>(value, dtype);
    case DType::kU16:
      return IntegerBits<uint16_t>(value, dtype);
    case DType::kU8:
      return IntegerBits<uint8_t>(value, dtype);
    case DType::kF64:
      return Bits(value);
  }
  return absl::InvalidArgumentError("Fill: invalid dtype");
}

// Checks for a binary elementwise operation over same-typed floating tensors.
absl::Status CheckElementwise(absl::string_view op, const Tensor& a, absl::string_view a_name,
                              const Tensor& b, absl::string_view b_name) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(a, absl::StrCat(op, " ", a_name)));
  RETURN_IF_ERROR(CheckSameDType(a, b, absl::StrCat(op, " ", a_name), b_name));
  RETURN_IF_ERROR(CheckSameShape(a, b, absl::StrCat(op, " ", a_name), b_name));
  return CheckSameDevice(a, b, absl::StrCat(op, " ", a_name), b_name);
}

}  // namespace

absl::Status Fill(const Tensor& t, double value, const Stream& stream) {
  RETURN_IF_ERROR(CheckDefined(t, "Fill tensor"));
  ASSIGN_OR_RETURN(const ki::FillBits bits, FillValueBits(value, t.dtype()));
  if (t.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "Fill", t.device(), stream, [&] { ki::cpu::Fill(t, bits); },
      [&](StreamHandle s) { return ki::cuda::Fill(t, bits, s); });
}

absl::Status Fill(absl::Span<const Tensor> ts, double value, const Stream& stream) {
  if (ts.empty()) return absl::OkStatus();
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string what = absl::StrCat("Fill ts[", i, "]");
    RETURN_IF_ERROR(CheckDefined(ts[i], what));
    RETURN_IF_ERROR(CheckSameDevice(ts[i], ts[0], what, "ts[0]"));
    RETURN_IF_ERROR(CheckSameDType(ts[i], ts[0], what, "ts[0]"));
  }
  ASSIGN_OR_RETURN(const ki::FillBits bits, FillValueBits(value, ts[0].dtype()));
  return ki::Dispatch(
      "Fill", ts[0].device(), stream,
      [&] {
        for (const Tensor& t : ts) ki::cpu::Fill(t, bits);
      },
      [&](StreamHandle s) { return ki::cuda::Fill(ts, bits, s); });
}

absl::Status Cast(const Tensor& src, const Tensor& dst, const Stream& stream) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(src, "Cast src"));
  RETURN_IF_ERROR(ki::CheckFloatingPoint(dst, "Cast dst"));
  RETURN_IF_ERROR(CheckSameShape(src, dst, "Cast src", "dst"));
  RETURN_IF_ERROR(CheckSameDevice(src, dst, "Cast src", "dst"));
  if (src.numel() == 0) return absl::OkStatus();
  if (src.dtype() != dst.dtype() && src.SharesMemoryWith(dst)) {
    return absl::InvalidArgumentError(absl::StrCat("Cast from ", src.DebugString(), " to ",
                                                   dst.DebugString(),
                                                   " in place: dtypes of different sizes"));
  }
  return ki::Dispatch(
      "Cast", src.device(), stream, [&] { ki::cpu::Cast(src, dst); },
      [&](StreamHandle s) { return ki::cuda::Cast(src, dst, s); });
}

absl::Status Scale(const Tensor& x, float alpha, const Stream& stream) {
  RETURN_IF_ERROR(ki::CheckFloatingPoint(x, "Scale x"));
  if (x.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "Scale", x.device(), stream, [&] { ki::cpu::Scale(x, alpha); },
      [&](StreamHandle s) { return ki::cuda::Scale(x, alpha, s); });
}

absl::Status Scale(absl::Span<const Tensor> xs, float alpha, const Stream& stream) {
  if (xs.empty()) return absl::OkStatus();
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = absl::StrCat("Scale xs[", i, "]");
    RETURN_IF_ERROR(ki::CheckFloatingPoint(xs[i], what));
    RETURN_IF_ERROR(CheckSameDevice(xs[i], xs[0], what, "xs[0]"));
    RETURN_IF_ERROR(CheckSameDType(xs[i], xs[0], what, "xs[0]"));
  }
  return ki::Dispatch(
      "Scale", xs[0].device(), stream,
      [&] {
        for (const Tensor& x : xs) ki::cpu::Scale(x, alpha);
      },
      [&](StreamHandle s) { return ki::cuda::Scale(xs, alpha, s); });
}

absl::Status Axpy(float alpha, const Tensor& x, const Tensor& y, const Stream& stream) {
  RETURN_IF_ERROR(CheckElementwise("Axpy", x, "x", y, "y"));
  if (x.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "Axpy", x.device(), stream, [&] { ki::cpu::Axpy(alpha, x, y); },
      [&](StreamHandle s) { return ki::cuda::Axpy(alpha, x, y, s); });
}

absl::Status Add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream& stream) {
  RETURN_IF_ERROR(CheckElementwise("Add", a, "a", b, "b"));
  RETURN_IF_ERROR(CheckElementwise("Add", a, "a", out, "out"));
  if (a.numel() == 0) return absl::OkStatus();
  return ki::Dispatch(
      "Add", a.device(), stream, [&] { ki::cpu::Add(a, b, out); },
      [&](StreamHandle s) { return ki::cuda::Add(a, b, out, s); });
}

}  // namespace usine
