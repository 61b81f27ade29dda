#include "runtime/kernels/matmul.h"

#include <atomic>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/dispatch.h"

namespace usine {
namespace {

namespace ki = kernels_internal;

absl::Status CheckDTypes(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor* bias) {
  RETURN_IF_ERROR(CheckSameDType(a, b, "Matmul a", "b"));
  const bool f32 = a.dtype() == DType::kF32 && c.dtype() == DType::kF32;
  const bool f64 = a.dtype() == DType::kF64 && c.dtype() == DType::kF64 && a.device().is_cpu();
  const bool bf16 = a.dtype() == DType::kBF16 &&
                    (c.dtype() == DType::kBF16 || c.dtype() == DType::kF32) && a.device().is_cuda();
  if (!f32 && !f64 && !bf16) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: unsupported dtypes a ", a.DebugString(), ", c ", c.DebugString(),
                     " (cpu: f32 or f64; CUDA: f32, or bf16 inputs with a bf16 or f32 output)"));
  }
  if (bias != nullptr) RETURN_IF_ERROR(CheckSameDType(*bias, c, "Matmul bias", "c"));
  return absl::OkStatus();
}

absl::StatusOr<ki::MatmulDims> CheckShapes(const Tensor& a, const Tensor& b, const Tensor& c,
                                           const MatmulOptions& o) {
  if (b.rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul b: expected rank 2, got ", b.DebugString()));
  }
  if (a.rank() < 2 || (o.transpose_a && a.rank() != 2)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Matmul a: expected rank 2 (or more without transpose_a), got ", a.DebugString()));
  }
  ki::MatmulDims d;
  const int64_t a_last = a.dim(a.rank() - 1);
  d.k = o.transpose_a ? a.dim(0) : a_last;
  d.m = o.transpose_a ? a_last : (a_last == 0 ? a.numel() : a.numel() / a_last);
  if (!o.transpose_a && a_last == 0) {
    d.m = 1;
    for (int i = 0; i + 1 < a.rank(); ++i) d.m *= a.dim(i);
  }
  const int64_t b_k = o.transpose_b ? b.dim(1) : b.dim(0);
  d.n = o.transpose_b ? b.dim(0) : b.dim(1);
  if (b_k != d.k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: inner dimensions differ: op(a) is [", d.m, ", ", d.k, "] from ",
                     a.DebugString(), ", op(b) is [", b_k, ", ", d.n, "] from ", b.DebugString()));
  }
  // c must be [M, N], or a's leading dimensions followed by N.
  std::vector<int64_t> want(a.shape().dims().begin(), a.shape().dims().end());
  if (o.transpose_a) want = {d.m, d.n};
  want.back() = d.n;
  RETURN_IF_ERROR(CheckShape(c, Shape(absl::MakeConstSpan(want)), "Matmul c"));
  if (o.bias != nullptr) RETURN_IF_ERROR(CheckShape(*o.bias, Shape{d.n}, "Matmul bias"));
  if (d.m > INT_MAX || d.n > INT_MAX || d.k > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("Matmul: dimensions [", d.m, ", ", d.k, "] x [",
                                                   d.k, ", ", d.n, "] exceed 2^31 - 1"));
  }
  return d;
}

// The checks of BatchedMatmul's shapes: rank 3, one batch size, then each product's.
absl::StatusOr<ki::MatmulDims> CheckBatchedShapes(const Tensor& a, const Tensor& b, const Tensor& c,
                                                  const MatmulOptions& o) {
  for (const auto& [t, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}, std::pair{&c, "c"}}) {
    if (t->rank() != 3 || t->dim(0) != a.dim(0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "BatchedMatmul ", name, ": expected [batch, rows, cols] with a's batch, got ",
          t->DebugString(), " (a ", a.DebugString(), ")"));
    }
  }
  if (o.bias != nullptr) return absl::InvalidArgumentError("BatchedMatmul: no bias is taken");
  ki::MatmulDims d;
  d.batch = a.dim(0);
  d.m = o.transpose_a ? a.dim(2) : a.dim(1);
  d.k = o.transpose_a ? a.dim(1) : a.dim(2);
  const int64_t b_k = o.transpose_b ? b.dim(2) : b.dim(1);
  d.n = o.transpose_b ? b.dim(1) : b.dim(2);
  if (b_k != d.k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BatchedMatmul: inner dimensions differ: op(a[i]) is [", d.m, ", ", d.k, "] from ",
        a.DebugString(), ", op(b[i]) is [", b_k, ", ", d.n, "] from ", b.DebugString()));
  }
  RETURN_IF_ERROR(CheckShape(c, Shape{d.batch, d.m, d.n}, "BatchedMatmul c"));
  if (d.m > INT_MAX || d.n > INT_MAX || d.k > INT_MAX || d.batch > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("BatchedMatmul: ", d.batch, " products of [",
                                                   d.m, ", ", d.k, "] x [", d.k, ", ", d.n,
                                                   "]: a size exceeds 2^31 - 1"));
  }
  return d;
}

absl::Status Multiply(const Tensor& a, const Tensor& b, const Tensor& c,
                      const MatmulOptions& options, const ki::MatmulDims& dims,
                      const Stream& stream) {
  return ki::Dispatch(
      "Matmul", a.device(), stream, [&] { ki::cpu::Matmul(a, b, c, options, dims); },
      [&](StreamHandle s) { return ki::cuda::Matmul(a, b, c, options, dims, s); });
}

// The f32 `x` rounded to bf16, in a temporary ordered on `stream`: bf16 on CUDA (for the
// tensor cores), the rounded values as f32 on the cpu (for sgemm).
absl::StatusOr<Tensor> RoundedToBf16(const Tensor& x, const Stream& stream) {
  ASSIGN_OR_RETURN(Tensor bf16,
                   Tensor::Empty(x.shape(), DType::kBF16, x.device(), stream.handle()));
  RETURN_IF_ERROR(Cast(x, bf16, stream));
  if (x.device().is_cuda()) return bf16;
  ASSIGN_OR_RETURN(Tensor rounded, Tensor::Empty(x.shape(), DType::kF32));
  RETURN_IF_ERROR(Cast(bf16, rounded));
  return rounded;
}

// The products of checked operands, f32 ones in F32MatmulPrecision().
absl::Status MultiplyInPrecision(const Tensor& a, const Tensor& b, const Tensor& c,
                                 const MatmulOptions& options, ki::MatmulDims dims,
                                 const Stream& stream) {
  if (dims.m == 0 || dims.n == 0 || dims.batch == 0) return absl::OkStatus();
  dims.f32_precision = F32MatmulPrecision();
  if (a.dtype() == DType::kF32 && dims.f32_precision == MatmulPrecision::kBf16 && dims.k > 0) {
    ASSIGN_OR_RETURN(const Tensor a16, RoundedToBf16(a, stream));
    ASSIGN_OR_RETURN(const Tensor b16, RoundedToBf16(b, stream));
    return Multiply(a16, b16, c, options, dims, stream);
  }
  return Multiply(a, b, c, options, dims, stream);
}

// The conditions of MatmulEpilogue::kGelu and kGeluGradient (matmul.h) but BatchedMatmul's
// refusal of any epilogue, which it checks first, and no gelu_input without one.
absl::Status CheckEpilogue(const Tensor& a, const Tensor& b, const Tensor& c,
                           const MatmulOptions& o, absl::string_view what) {
  if (o.epilogue == MatmulEpilogue::kNone) {
    if (o.gelu_input == nullptr) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a gelu_input without the GELU epilogue"));
  }
  const bool gradient = o.epilogue == MatmulEpilogue::kGeluGradient;
  const absl::string_view epilogue = gradient ? "GELU-gradient" : "GELU";
  if (!a.device().is_cuda() || a.dtype() != DType::kBF16 || c.dtype() != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: the ", epilogue, " epilogue needs bf16 a, b and c on CUDA, got a ",
                     a.DebugString(), ", c ", c.DebugString()));
  }
  if (gradient && (o.bias != nullptr || o.addend != nullptr || o.beta != 0.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: the GELU-gradient epilogue takes no bias, no addend and beta 0, got ",
                     o.bias != nullptr ? "a bias, " : "", o.addend != nullptr ? "an addend, " : "",
                     "beta ", o.beta));
  }
  if (o.gelu_input == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: the ", epilogue, " epilogue needs a gelu_input"));
  }
  const Tensor& aux = *o.gelu_input;
  RETURN_IF_ERROR(CheckDefined(aux, "Matmul gelu_input"));
  RETURN_IF_ERROR(CheckSameDevice(aux, c, "Matmul gelu_input", "c"));
  RETURN_IF_ERROR(CheckSameDType(aux, c, "Matmul gelu_input", "c"));
  RETURN_IF_ERROR(CheckShape(aux, c.shape(), "Matmul gelu_input"));
  // kGelu writes it, so it overlaps nothing; kGeluGradient reads it, as it does a and b.
  const bool overlaps = gradient ? aux.Overlaps(c)
                                 : aux.Overlaps(a) || aux.Overlaps(b) || aux.Overlaps(c) ||
                                       (o.bias != nullptr && aux.Overlaps(*o.bias));
  if (overlaps) {
    return absl::InvalidArgumentError(
        absl::StrCat("Matmul: gelu_input ", aux.DebugString(),
                     gradient ? " overlaps c" : " overlaps another operand"));
  }
  return absl::OkStatus();
}

// MatmulOptions::addend's conditions.
absl::Status CheckAddend(const Tensor& c, const MatmulOptions& o) {
  const Tensor& addend = *o.addend;
  RETURN_IF_ERROR(CheckDefined(addend, "Matmul addend"));
  RETURN_IF_ERROR(CheckSameDevice(addend, c, "Matmul addend", "c"));
  RETURN_IF_ERROR(CheckSameDType(addend, c, "Matmul addend", "c"));
  RETURN_IF_ERROR(CheckShape(addend, c.shape(), "Matmul addend"));
  if (addend.raw_data() == c.raw_data()) return absl::OkStatus();  // c itself
  // Only the outputs matter: a, b and the bias are read, as the addend is.
  if (addend.Overlaps(c) || (o.gelu_input != nullptr && addend.Overlaps(*o.gelu_input))) {
    return absl::InvalidArgumentError(absl::StrCat("Matmul: the addend ", addend.DebugString(),
                                                   " overlaps the output c ", c.DebugString(),
                                                   " (or gelu_input) without being c itself"));
  }
  return absl::OkStatus();
}

// The checks of both entry points but their shapes'; `what` names the entry point.
absl::Status CheckOperands(const Tensor& a, const Tensor& b, const Tensor& c,
                           const MatmulOptions& options, absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(a, absl::StrCat(what, " a")));
  RETURN_IF_ERROR(CheckDefined(b, absl::StrCat(what, " b")));
  RETURN_IF_ERROR(CheckDefined(c, absl::StrCat(what, " c")));
  RETURN_IF_ERROR(CheckSameDevice(a, b, absl::StrCat(what, " a"), "b"));
  RETURN_IF_ERROR(CheckSameDevice(a, c, absl::StrCat(what, " a"), "c"));
  if (options.bias != nullptr) {
    RETURN_IF_ERROR(CheckSameDevice(a, *options.bias, absl::StrCat(what, " a"), "bias"));
  }
  RETURN_IF_ERROR(CheckDTypes(a, b, c, options.bias));
  if (c.Overlaps(a) || c.Overlaps(b) || (options.bias != nullptr && c.Overlaps(*options.bias))) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": c overlaps an input"));
  }
  return CheckEpilogue(a, b, c, options, what);
}

// Whether ProductOperand(x) is a bf16 copy rather than `x`.
bool OperandIsBf16Copy(const Tensor& x) {
  return ProductOperandDType(x.dtype(), x.device()) != x.dtype();
}

}  // namespace

absl::Status Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& options,
                    const Stream& stream) {
  RETURN_IF_ERROR(CheckOperands(a, b, c, options, "Matmul"));
  ASSIGN_OR_RETURN(const ki::MatmulDims dims, CheckShapes(a, b, c, options));
  if (options.epilogue != MatmulEpilogue::kNone && dims.k == 0) {
    return absl::InvalidArgumentError("Matmul: an epilogue needs k > 0");
  }
  if (options.addend == nullptr) return MultiplyInPrecision(a, b, c, options, dims, stream);
  RETURN_IF_ERROR(CheckAddend(c, options));
  MatmulOptions own = options;
  if (options.addend->raw_data() == c.raw_data()) {
    own.addend = nullptr;  // c itself: the product as without one.
  } else if (dims.k == 0) {
    // The empty product scales c in place (both backends): c holds the addend first.
    if (dims.m > 0 && dims.n > 0) RETURN_IF_ERROR(Copy(*options.addend, c, stream));
    own.addend = nullptr;
  }
  return MultiplyInPrecision(a, b, c, own, dims, stream);
}

DType ProductOperandDType(DType dtype, Device device) {
  const bool rounded =
      device.is_cuda() && dtype == DType::kF32 && F32MatmulPrecision() == MatmulPrecision::kBf16;
  return rounded ? DType::kBF16 : dtype;
}

absl::StatusOr<Tensor> ProductOperand(const Tensor& x, const Stream& stream) {
  RETURN_IF_ERROR(CheckDefined(x, "ProductOperand x"));
  if (!OperandIsBf16Copy(x)) return x;
  return RoundedToBf16(x, stream);
}

absl::Status EmulateProductOperandOutput(const Tensor& c) {
  RETURN_IF_ERROR(CheckDefined(c, "EmulateProductOperandOutput c"));
  if (!c.device().is_cpu() || c.dtype() != DType::kF32 ||
      F32MatmulPrecision() != MatmulPrecision::kBf16) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const Tensor bf16, Tensor::Empty(c.shape(), DType::kBF16));
  RETURN_IF_ERROR(Cast(c, bf16));
  return Cast(bf16, c);
}

absl::StatusOr<Tensor> ProductOperandBuffer(const Tensor& x, const Stream& stream) {
  RETURN_IF_ERROR(CheckDefined(x, "ProductOperandBuffer x"));
  if (!OperandIsBf16Copy(x)) return x;
  return Tensor::Empty(x.shape(), DType::kBF16, x.device(), stream.handle());
}

absl::Status BatchedMatmul(const Tensor& a, const Tensor& b, const Tensor& c,
                           const MatmulOptions& options, const Stream& stream) {
  if (options.epilogue != MatmulEpilogue::kNone) {
    return absl::InvalidArgumentError("BatchedMatmul: no epilogue is taken");
  }
  if (options.addend != nullptr) {
    return absl::InvalidArgumentError("BatchedMatmul: no addend is taken");
  }
  RETURN_IF_ERROR(CheckOperands(a, b, c, options, "BatchedMatmul"));
  ASSIGN_OR_RETURN(const ki::MatmulDims dims, CheckBatchedShapes(a, b, c, options));
  return MultiplyInPrecision(a, b, c, options, dims, stream);
}

absl::string_view MatmulPrecisionName(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::kF32:
      return "f32";
    case MatmulPrecision::kTf32:
      return "tf32";
    case MatmulPrecision::kBf16:
      return "bf16";
  }
  return "?";  // Unreachable: every enumerator is handled above.
}

std::optional<MatmulPrecision> MatmulPrecisionNamed(absl::string_view name) {
  for (const MatmulPrecision p :
       {MatmulPrecision::kF32, MatmulPrecision::kTf32, MatmulPrecision::kBf16}) {
    if (MatmulPrecisionName(p) == name) return p;
  }
  return std::nullopt;
}

namespace {
std::atomic<MatmulPrecision> f32_matmul_precision{MatmulPrecision::kF32};
}  // namespace

void SetF32MatmulPrecision(MatmulPrecision precision) { f32_matmul_precision.store(precision); }
MatmulPrecision F32MatmulPrecision() { return f32_matmul_precision.load(); }

}  // namespace usine
