// The CUDA runtime API's streams and events (shim/cuda_runtime_api.h). Work runs when issued, so
// a stream has nothing pending: synchronising returns at once, an event is complete once
// recorded and a wait on it is met. The handles are checked: a destroyed or unknown stream or
// event is cudaErrorInvalidResourceHandle, as CUDA's runtime reports it where it can.
#include <chrono>
#include <mutex>
#include <set>

#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/internal/api_counts.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/launch_limits.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"
#include "tests/testing/cuda_emulator/internal/streams.h"

// A stream holds nothing: its work has run by the time the call that issued it returns.
struct CUstream_st {};

struct CUevent_st {
  unsigned int flags;
  bool recorded = false;
  std::chrono::steady_clock::time_point time;
};

namespace usine::testing::cuda_emulator_internal {
namespace {

std::mutex handles_mu;
std::set<const void*>& LiveHandles() {
  static std::set<const void*> handles;
  return handles;
}

bool Live(const void* handle) {
  std::lock_guard<std::mutex> lock(handles_mu);
  return LiveHandles().count(handle) != 0;
}

bool Forget(const void* handle) {
  std::lock_guard<std::mutex> lock(handles_mu);
  return LiveHandles().erase(handle) != 0;
}

void Remember(const void* handle) {
  std::lock_guard<std::mutex> lock(handles_mu);
  LiveHandles().insert(handle);
}

}  // namespace

bool ValidStream(cudaStream_t stream) { return stream == nullptr || Live(stream); }

}  // namespace usine::testing::cuda_emulator_internal

using usine::testing::cuda_emulator_internal::ApiCall;
using usine::testing::cuda_emulator_internal::Count;
using usine::testing::cuda_emulator_internal::EventDestroyed;
using usine::testing::cuda_emulator_internal::Forget;
using usine::testing::cuda_emulator_internal::HostWaitsForEvent;
using usine::testing::cuda_emulator_internal::HostWaitsForStream;
using usine::testing::cuda_emulator_internal::Live;
using usine::testing::cuda_emulator_internal::Note;
using usine::testing::cuda_emulator_internal::RecordEvent;
using usine::testing::cuda_emulator_internal::Remember;
using usine::testing::cuda_emulator_internal::SetLastError;
using usine::testing::cuda_emulator_internal::StreamCreated;
using usine::testing::cuda_emulator_internal::StreamDestroyed;
using usine::testing::cuda_emulator_internal::ValidStream;
using usine::testing::cuda_emulator_internal::WaitForEvent;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr || (flags & ~cudaStreamNonBlocking) != 0) {
    return SetLastError(cudaErrorInvalidValue);
  }
  *stream = new CUstream_st;
  Remember(*stream);
  StreamCreated(*stream, /*blocking=*/(flags & cudaStreamNonBlocking) == 0);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr || !Forget(stream)) {
    Note("cudaStreamDestroy(%p): not a live stream", static_cast<void*>(stream));
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  StreamDestroyed(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!ValidStream(stream)) return SetLastError(cudaErrorInvalidResourceHandle);
  Count(ApiCall::kHostWait);
  HostWaitsForStream(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  if (!ValidStream(stream) || event == nullptr || !Live(event)) {
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  if (flags != 0) return SetLastError(cudaErrorInvalidValue);
  WaitForEvent(stream, event);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || (flags & ~cudaEventDisableTiming) != 0) {
    return SetLastError(cudaErrorInvalidValue);
  }
  *event = new CUevent_st{flags, false, {}};
  Remember(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr || !Forget(event)) {
    Note("cudaEventDestroy(%p): not a live event", static_cast<void*>(event));
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  EventDestroyed(event);
  delete event;
  return cudaSuccess;
}

// Recording and reading an event from two host threads at once is a race in CUDA as here; the
// library does neither.
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr || !Live(event) || !ValidStream(stream)) {
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  RecordEvent(event, stream);
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (event == nullptr || !Live(event)) return SetLastError(cudaErrorInvalidResourceHandle);
  HostWaitsForEvent(event);  // The host now knows the event's work is done.
  return cudaSuccess;        // Complete, or never recorded: both are cudaSuccess in CUDA.
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  const cudaError_t status = cudaEventQuery(event);
  if (status == cudaSuccess) Count(ApiCall::kHostWait);
  return status;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return SetLastError(cudaErrorInvalidValue);
  if (start == nullptr || end == nullptr || !Live(start) || !Live(end)) {
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  if ((start->flags & cudaEventDisableTiming) != 0 || (end->flags & cudaEventDisableTiming) != 0 ||
      !start->recorded || !end->recorded) {
    return SetLastError(cudaErrorInvalidResourceHandle);
  }
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}
