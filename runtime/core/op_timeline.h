// OpTimeline: where the time of a piece of work (a training step) goes, as named segments of
// one device's timeline. The layers mark where each of their operations starts
// (MarkOp("attn.core", device)); a segment lasts until the next mark, so the segments cover
// the work between Start and Stop without gaps or overlaps. On a CUDA device a mark records an
// event on the device's default stream, where the layers enqueue their kernels, so a segment
// times the GPU's work, not the launches; on the cpu a mark reads the wall clock.
//
//   RETURN_IF_ERROR(OpTimeline::Start(device));
//   ... one training step ...
//   ASSIGN_OR_RETURN(std::vector<OpTime> ops, OpTimeline::Stop());  // heaviest first
//
// Off by default: MarkOp is then one relaxed atomic load, and it stays cheap on the hot path.
// While on, each mark creates and records an event (microseconds on CUDA): time the work
// without the timeline too, and read the timeline for shares, not for the total.
//
// Thread-safety: process-wide; MarkOp may be called from any thread, but the segments mean
// something only when one thread drives the marked work (the training loop). Marks for
// another device than Start's are ignored.
#ifndef USINE_RUNTIME_CORE_OP_TIMELINE_H_
#define USINE_RUNTIME_CORE_OP_TIMELINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/core/device.h"

namespace usine {

// One name's segments, summed.
struct OpTime {
  std::string name;
  int64_t count = 0;  // segments with this name
  double milliseconds = 0;
};

// The name of the time from Start to the first mark.
inline constexpr absl::string_view kUnmarkedOp = "(unmarked)";

class OpTimeline {
 public:
  // Begins a timeline on `device`. FailedPrecondition if one is running.
  [[nodiscard]] static absl::Status Start(Device device);
  // Ends the timeline: waits for the device to reach the last mark and returns each name's
  // total, heaviest first (ties by name). FailedPrecondition if none is running.
  [[nodiscard]] static absl::StatusOr<std::vector<OpTime>> Stop();
};

// Starts segment `name` on `device`'s timeline, ending the one before. A no-op while no
// timeline runs. An error recording the event ends the timeline, and Stop returns it.
void MarkOp(absl::string_view name, Device device);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_OP_TIMELINE_H_
