// Upload: a copy from host memory to a CUDA device that neither waits for the device nor
// keeps the source, for the small arrays a training step sends while the device is busy
// (token ids, targets). cudaMemcpyAsync from pageable memory may make the host wait for the
// stream first (CUDA's API synchronisation rules), which stalls the host in the middle of a
// step; Upload copies the source into page-locked staging memory and enqueues the copy from
// there.
//
//   ASSIGN_OR_RETURN(Tensor device_ids, Tensor::Empty({n}, DType::kI32, device));
//   RETURN_IF_ERROR(Upload(host_ids, device_ids, Stream::Default(device)));
//   host_ids may be changed or freed now; device_ids is ready for the stream's next work.
//
// Staging: each device has a ring of kUploadSlots page-locked buffers. A slot is taken again
// once the copy that last used it has finished, so Upload waits only when the device lags
// the host by kUploadSlots uploads. A slot too small for an upload grows to the next power of
// two (at least 64 KiB). Outgrown buffers are kept, not freed (freeing page-locked memory
// synchronises the device), for the life of the process: less than each slot's final size,
// so at most kUploadSlots x kMaxStagedUploadBytes a device.
// Sources above kMaxStagedUploadBytes are not staged: they are copied as Copy does.
//
// Thread-safe: the uploads to one device are serialised.
#ifndef USINE_RUNTIME_KERNELS_UPLOAD_H_
#define USINE_RUNTIME_KERNELS_UPLOAD_H_

#include <cstddef>

#include "absl/status/status.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

inline constexpr int kUploadSlots = 8;
inline constexpr size_t kMaxStagedUploadBytes = size_t{4} << 20;

// dst <- src, asynchronously on `stream` (a stream of dst's device). src on the cpu (any
// host memory); dst on a CUDA device, or on the cpu, where Upload is Copy (and `stream` the
// host stream). REQUIRES: same dtype and shape.
[[nodiscard]] absl::Status Upload(const Tensor& src, const Tensor& dst, const Stream& stream);

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_UPLOAD_H_
