// The order a GPU gives the work of different streams, and the races between calls it leaves
// unordered. The emulator runs work when it is issued: one valid order. A GPU may run the calls
// of two streams in another order, or at once, unless something orders them:
//   - a stream runs its own calls in the order they were issued;
//   - the legacy default stream (null) and each blocking stream (created without
//     cudaStreamNonBlocking) run after what the other had been given;
//   - cudaStreamWaitEvent orders a stream's later calls after what the event's stream had been
//     given when the event was recorded;
//   - a host wait (cudaStreamSynchronize, cudaEventSynchronize or a cudaEventQuery that finds the
//     event complete, cudaDeviceSynchronize, cudaFree, cudaFreeHost, a copy from the device into
//     pageable host memory) orders every call the host issues afterwards after the work it
//     waited for.
// Vector clocks follow these rules. A call's accesses of device memory are checked against the
// recent accesses (the last kRecentAccesses since the host last waited for the whole device) of
// other streams: two that overlap, at least one a write, with neither ordered before the other,
// are a race, reported as an error the emulation goes on from. The host threads count as one
// host, since their synchronisation among themselves (mutexes, queues) is invisible here: that
// adds orderings that happened, so races may be missed, never invented. A race between copies,
// memsets, cuBLASLt products and NCCL calls is one a GPU may run; one with a kernel's launch is
// one the kernel's arguments allow (IssueKernelOnStream's callers give a pointer argument's bytes
// to its allocation's end, written unless a pointer to const). Thread-safe.
//
//   IssueOnStream("cublasLtMatmul", stream, {{a, a_bytes, DeviceAccess::kRead, "A"}, ...});
//   RecordEvent(event, stream);  WaitForEvent(other, event);  HostWaitsForStream(stream);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAM_ORDER_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAM_ORDER_H_

#include <cstddef>
#include <initializer_list>
#include <vector>

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator_internal {

inline constexpr size_t kRecentAccesses = 4096;

// One access of [p, p + bytes) by a call, cut at the end of p's device allocation; memory that is
// not device memory is ignored.
struct DeviceAccess {
  enum Kind { kRead, kWrite };
  const void* p;
  size_t bytes;
  Kind kind;
  const char* what;  // The operand, in reports ("A", "recvbuff"): a string literal.
};

// A call (a string literal) issued on `stream` (null: the default stream) that makes these
// accesses.
void IssueOnStream(const char* call, cudaStream_t stream,
                   std::initializer_list<DeviceAccess> accesses);
// A launch of the kernel at `kernel` that makes these accesses; reports name it by `name` (a
// string literal, kept) or, when null, by the function at that address.
void IssueKernelOnStream(const void* kernel, const char* name, cudaStream_t stream,
                         const std::vector<DeviceAccess>& accesses);

void StreamCreated(cudaStream_t stream, bool blocking);
void StreamDestroyed(cudaStream_t stream);
void EventDestroyed(cudaEvent_t event);
void RecordEvent(cudaEvent_t event, cudaStream_t stream);
void WaitForEvent(cudaStream_t stream, cudaEvent_t event);  // cudaStreamWaitEvent
void HostWaitsForEvent(cudaEvent_t event);                  // Once it is complete.
void HostWaitsForStream(cudaStream_t stream);
void HostWaitsForDevice();
// Device memory [begin, end) was freed: its accesses are forgotten (its addresses may come back).
void ForgetAccesses(const void* begin, const void* end);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAM_ORDER_H_
