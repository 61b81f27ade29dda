#include "tests/collectives/collective_values.h"

#include <algorithm>

#include "runtime/core/float16.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

namespace usine::testing {

double Value(int rank, int64_t i) { return static_cast<double>((i * 7 + rank * 3) % 17) - 8.0; }

absl::StatusOr<Tensor> Filled(DType dtype, int64_t n, const std::function<double(int64_t)>& f) {
  ASSIGN_OR_RETURN(Tensor t, Tensor::Empty({n}, dtype));
  for (int64_t i = 0; i < n; ++i) {
    const double v = f(i);
    switch (dtype) {
      case DType::kF32:
        static_cast<float*>(t.raw_data())[i] = static_cast<float>(v);
        break;
      case DType::kBF16:
        static_cast<BFloat16*>(t.raw_data())[i] = BFloat16::FromFloat(static_cast<float>(v));
        break;
      case DType::kF16:
        static_cast<Float16*>(t.raw_data())[i] = Float16::FromFloat(static_cast<float>(v));
        break;
      case DType::kI32:
        static_cast<int32_t*>(t.raw_data())[i] = static_cast<int32_t>(v);
        break;
      case DType::kI64:
        static_cast<int64_t*>(t.raw_data())[i] = static_cast<int64_t>(v);
        break;
      case DType::kU16:
        static_cast<uint16_t*>(t.raw_data())[i] = static_cast<uint16_t>(v + 100);
        break;
      case DType::kU8:
        static_cast<uint8_t*>(t.raw_data())[i] = static_cast<uint8_t>(v + 100);
        break;
      case DType::kF64:
        static_cast<double*>(t.raw_data())[i] = v;
        break;
    }
  }
  return t;
}

absl::StatusOr<Tensor> Filled(Device device, DType dtype, int64_t n,
                              const std::function<double(int64_t)>& f) {
  ASSIGN_OR_RETURN(Tensor host, Filled(dtype, n, f));
  if (device.is_cpu()) return host;
  ASSIGN_OR_RETURN(Tensor t, Tensor::Empty({n}, dtype, device));
  RETURN_IF_ERROR(Copy(host, t));
  return t;
}

absl::StatusOr<Tensor> ToHost(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(t.shape(), t.dtype()));
  RETURN_IF_ERROR(Copy(t, host));
  return host;
}

double At(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32:
      return static_cast<const float*>(t.raw_data())[i];
    case DType::kBF16:
      return static_cast<const BFloat16*>(t.raw_data())[i].ToFloat();
    case DType::kF16:
      return static_cast<const Float16*>(t.raw_data())[i].ToFloat();
    case DType::kI32:
      return static_cast<const int32_t*>(t.raw_data())[i];
    case DType::kI64:
      return static_cast<double>(static_cast<const int64_t*>(t.raw_data())[i]);
    case DType::kU16:
      return static_cast<const uint16_t*>(t.raw_data())[i] - 100.0;
    case DType::kU8:
      return static_cast<const uint8_t*>(t.raw_data())[i] - 100.0;
    case DType::kF64:
      return static_cast<const double*>(t.raw_data())[i];
  }
  return 0;
}

double Reduce(ReduceOp op, int size, const std::function<double(int)>& v) {
  double acc = v(0);
  for (int r = 1; r < size; ++r) {
    const double x = v(r);
    acc = op == ReduceOp::kMax   ? std::max(acc, x)
          : op == ReduceOp::kMin ? std::min(acc, x)
                                 : acc + x;
  }
  return op == ReduceOp::kAvg ? acc / size : acc;
}

}  // namespace usine::testing
