// Copy between any two devices (cpu <-> cpu, cpu <-> cuda:N, cuda:N <-> cuda:M).
// Execution contract: kernels.h. For a copy that involves a GPU, `stream` is a stream of
// that GPU (of the destination's when both are GPUs); a cpu side that is not pinned
// memory makes CUDA stage the copy, which then returns only once the source was read.
//
//   RETURN_IF_ERROR(Copy(host_batch, device_batch, copy_stream));  // asynchronous
//   RETURN_IF_ERROR(Copy(device_loss, host_loss));                 // synchronous
#ifndef USINE_RUNTIME_KERNELS_COPY_H_
#define USINE_RUNTIME_KERNELS_COPY_H_

#include "absl/status/status.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

// dst <- src. REQUIRES: same dtype and shape; src and dst do not overlap unless identical.
[[nodiscard]] absl::Status Copy(const Tensor& src, const Tensor& dst,
                                const Stream& stream = Stream::Host());

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_COPY_H_
