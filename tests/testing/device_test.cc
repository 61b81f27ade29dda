#include "tests/testing/device_test.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

namespace usine::testing {

absl::StatusOr<Tensor> MakeTensor(Device device, const Shape& shape, DType dtype,
                                  const void* values) {
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(shape, dtype));
  if (host.nbytes() > 0) std::memcpy(host.raw_data(), values, host.nbytes());
  if (device.is_cpu()) return host;
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty(shape, dtype, device));
  RETURN_IF_ERROR(Copy(host, out));
  return out;
}

absl::StatusOr<std::vector<char>> ReadBytes(const Tensor& t) {
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(t.shape(), t.dtype()));
  RETURN_IF_ERROR(Copy(t, host));
  const char* p = static_cast<const char*>(host.raw_data());
  return std::vector<char>(p, p + host.nbytes());
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

}  // namespace usine::testing
