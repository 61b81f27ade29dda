// Private to collectives/nccl/. How an NCCL call is started and followed: enqueued on a CUDA
// stream under the watchdog, then marked there by a CUDA event; its Work is done when the
// event has completed, and fails (aborting the communicator) when NCCL reports an error.
//
//   return LaunchNcclCall(comm, stream, call.Describe(*this), call.timeout, {send, recv},
//                         "ncclAllReduce", [&](ncclComm_t c, cudaStream_t s) {
//                           return ncclAllReduce(..., c, s);
//                         });
#ifndef USINE_COLLECTIVES_NCCL_NCCL_WORK_H_
#define USINE_COLLECTIVES_NCCL_NCCL_WORK_H_

#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "collectives/communicator.h"
#include "collectives/nccl/nccl_comm.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine::collectives_internal {

// Tracks `description` with the watchdog for `timeout` (from now), runs `op` on `stream`
// through comm->Enqueue, records an event after it and returns the Work that follows it. The
// Work keeps `keep_alive` (the call's tensors) until the call has completed (after a failure,
// until its event has: NCCL's kernels quit once the communicator is aborted, but may still be
// running when the error is seen), and the watch until then; its Wait and Test may be called
// from any thread, and destroying it waits for the call (the device may still be using the
// tensors; after a failure for at most a few seconds, after which the tensors are leaked rather
// than handed back). `unwaited`: nobody will wait on the Work
// soon (a stream-ordered call), so the watchdog itself polls the event and NCCL's errors
// (Watchdog::SetCompletionTest), to drop the call from the watch once it has run and to abort
// the communicator when NCCL reports an error.
// REQUIRES: stream.device() == comm->device().
[[nodiscard]] absl::StatusOr<std::unique_ptr<Work>> LaunchNcclCall(
    std::shared_ptr<NcclComm> comm, const Stream& stream, std::string description,
    absl::Duration timeout, std::vector<Tensor> keep_alive, bool unwaited, const char* op_name,
    absl::FunctionRef<ncclResult_t(ncclComm_t, cudaStream_t)> op);

}  // namespace usine::collectives_internal

#endif  // USINE_COLLECTIVES_NCCL_NCCL_WORK_H_
