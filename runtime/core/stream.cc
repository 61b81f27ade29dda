#include "runtime/core/stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

#if USINE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "runtime/core/cuda_status.h"
#include "runtime/core/internal/cuda_device_guard.h"
#endif

namespace usine {
namespace {

#if !USINE_WITH_CUDA
absl::Status NoCuda(Device device) {
  return absl::FailedPreconditionError(
      absl::StrCat(device.ToString(), ": this build of usine has no CUDA support"));
}
#endif

}  // namespace

Stream Stream::Host() { return Stream(Device::Cpu(), nullptr, false); }

Stream Stream::Default(Device device) { return Stream(device, nullptr, false); }

Stream Stream::Borrow(Device device, StreamHandle handle) { return Stream(device, handle, false); }

absl::StatusOr<Stream> Stream::Create(Device device) {
  if (device.is_cpu()) return Host();
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device));
  cudaStream_t stream = nullptr;
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)));
  return Stream(device, stream, true);
#else
  return NoCuda(device);
#endif
}

Stream::Stream(Stream&& other) noexcept
    : device_(other.device_),
      handle_(std::exchange(other.handle_, nullptr)),
      owned_(std::exchange(other.owned_, false)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  std::swap(device_, other.device_);  // `other` releases what this held.
  std::swap(handle_, other.handle_);
  std::swap(owned_, other.owned_);
  return *this;
}

Stream::~Stream() {
#if USINE_WITH_CUDA
  if (owned_ && handle_ != nullptr) cudaStreamDestroy(handle_);
#endif
}

absl::Status Stream::Synchronize() const {
  if (is_host()) return absl::OkStatus();
#if USINE_WITH_CUDA
  if (handle_ == nullptr) {
    core_internal::CudaDeviceGuard guard;
    RETURN_IF_ERROR(guard.Enter(device_));
    return USINE_CUDA_STATUS(cudaStreamSynchronize(nullptr));
  }
  return USINE_CUDA_STATUS(cudaStreamSynchronize(handle_));
#else
  return NoCuda(device_);
#endif
}

absl::Status Stream::WaitFor(const Event& event) const {
  if (event.device().is_cpu()) return absl::OkStatus();  // Host events are complete.
  if (event.device() != device_) {
    return absl::InvalidArgumentError(absl::StrCat("stream on ", device_.ToString(),
                                                   " cannot wait for an event on ",
                                                   event.device().ToString()));
  }
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device_));
  return USINE_CUDA_STATUS(cudaStreamWaitEvent(handle_, event.handle(), 0));
#else
  return NoCuda(device_);
#endif
}

absl::StatusOr<Event> Event::Create(Device device, bool enable_timing) {
  if (device.is_cpu()) return Event(device, nullptr, enable_timing);
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device));
  cudaEvent_t event = nullptr;
  RETURN_IF_ERROR(USINE_CUDA_STATUS(
      cudaEventCreateWithFlags(&event, enable_timing ? cudaEventDefault : cudaEventDisableTiming)));
  return Event(device, event, enable_timing);
#else
  return NoCuda(device);
#endif
}

Event::Event(Event&& other) noexcept
    : device_(other.device_),
      handle_(std::exchange(other.handle_, nullptr)),
      timing_(other.timing_),
      host_time_(other.host_time_) {}

Event& Event::operator=(Event&& other) noexcept {
  std::swap(device_, other.device_);  // `other` releases what this held.
  std::swap(handle_, other.handle_);
  std::swap(timing_, other.timing_);
  std::swap(host_time_, other.host_time_);
  return *this;
}

Event::~Event() {
#if USINE_WITH_CUDA
  if (handle_ != nullptr) cudaEventDestroy(handle_);
#endif
}

absl::Status Event::Record(const Stream& stream) {
  if (stream.device() != device_) {
    return absl::InvalidArgumentError(absl::StrCat("event on ", device_.ToString(),
                                                   " cannot be recorded on a stream of ",
                                                   stream.device().ToString()));
  }
  if (device_.is_cpu()) {
    host_time_ = std::chrono::steady_clock::now();
    return absl::OkStatus();
  }
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device_));
  return USINE_CUDA_STATUS(cudaEventRecord(handle_, stream.handle()));
#else
  return NoCuda(device_);
#endif
}

absl::StatusOr<bool> Event::IsComplete() const {
  if (device_.is_cpu()) return true;
#if USINE_WITH_CUDA
  // The event's device, not the calling thread's (a data thread's is device 0): a runtime
  // call on another device would make a context there.
  core_internal::CudaDeviceGuard guard;
  RETURN_IF_ERROR(guard.Enter(device_));
  const cudaError_t err = cudaEventQuery(handle_);
  if (err == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  RETURN_IF_ERROR(USINE_CUDA_STATUS(err));
  return true;
#else
  return NoCuda(device_);
#endif
}

absl::Status Event::Synchronize() const {
  if (device_.is_cpu()) return absl::OkStatus();
#if USINE_WITH_CUDA
  core_internal::CudaDeviceGuard guard;  // As in IsComplete.
  RETURN_IF_ERROR(guard.Enter(device_));
  return USINE_CUDA_STATUS(cudaEventSynchronize(handle_));
#else
  return NoCuda(device_);
#endif
}

absl::StatusOr<float> Event::ElapsedMillisecondsSince(const Event& start) const {
  if (!timing_ || !start.timing_) {
    return absl::FailedPreconditionError("elapsed time needs two events created with timing");
  }
  if (start.device_ != device_) {
    return absl::InvalidArgumentError("elapsed time between events of different devices");
  }
  if (device_.is_cpu()) {
    return std::chrono::duration<float, std::milli>(host_time_ - start.host_time_).count();
  }
#if USINE_WITH_CUDA
  float ms = 0;
  RETURN_IF_ERROR(USINE_CUDA_STATUS(cudaEventElapsedTime(&ms, start.handle_, handle_)));
  return ms;
#else
  return NoCuda(device_);
#endif
}

}  // namespace usine
