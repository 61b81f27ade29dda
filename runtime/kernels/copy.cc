#include "runtime/kernels/copy.h"

#include <cstring>

#include "runtime/core/status_macros.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/dispatch.h"

namespace usine {

absl::Status Copy(const Tensor& src, const Tensor& dst, const Stream& stream) {
  RETURN_IF_ERROR(CheckSameDType(src, dst, "Copy src", "dst"));
  RETURN_IF_ERROR(CheckSameShape(src, dst, "Copy src", "dst"));
  // The GPU side decides the stream; with two GPUs, the destination's.
  const Device device = dst.device().is_cuda() ? dst.device() : src.device();
  return kernels_internal::Dispatch(
      "Copy", device, stream,
      [&] {
        if (src.numel() > 0 && src.raw_data() != dst.raw_data()) {
          std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
        }
      },
      [&](StreamHandle s) {
        return src.numel() == 0 ? absl::OkStatus() : kernels_internal::cuda::Copy(src, dst, s);
      });
}

}  // namespace usine
