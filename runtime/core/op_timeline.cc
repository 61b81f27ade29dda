#include "runtime/core/op_timeline.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"

#include "runtime/core/status_macros.h"
#include "runtime/core/stream.h"

namespace usine {
namespace {

struct Mark {
  std::string name;
  Event event;
};

struct Timeline {
  std::mutex mu;
  std::optional<Device> device;  // set while a timeline runs
  std::vector<Mark> marks;
  absl::Status error;  // the first failed mark
};

Timeline& Global() {
  static auto* timeline = new Timeline;
  return *timeline;
}

std::atomic<bool> g_running{false};

Stream TimelineStream(Device device) { return Stream::Default(device); }

absl::StatusOr<Mark> Record(absl::string_view name, Device device) {
  ASSIGN_OR_RETURN(Event event, Event::Create(device, /*enable_timing=*/true));
  RETURN_IF_ERROR(event.Record(TimelineStream(device)));
  return Mark{std::string(name), std::move(event)};
}

}  // namespace

absl::Status OpTimeline::Start(Device device) {
  Timeline& t = Global();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.device.has_value()) {
    return absl::FailedPreconditionError("OpTimeline::Start: a timeline is already running");
  }
  ASSIGN_OR_RETURN(Mark first, Record(kUnmarkedOp, device));
  t.marks.clear();
  t.marks.push_back(std::move(first));
  t.error = absl::OkStatus();
  t.device = device;
  g_running.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

void MarkOp(absl::string_view name, Device device) {
  if (!g_running.load(std::memory_order_relaxed)) return;
  Timeline& t = Global();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.device.has_value() || *t.device != device || !t.error.ok()) return;
  absl::StatusOr<Mark> mark = Record(name, device);
  if (!mark.ok()) {
    t.error = std::move(mark).status();
    return;
  }
  t.marks.push_back(*std::move(mark));
}

absl::StatusOr<std::vector<OpTime>> OpTimeline::Stop() {
  Timeline& t = Global();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.device.has_value()) {
    return absl::FailedPreconditionError("OpTimeline::Stop: no timeline is running");
  }
  g_running.store(false, std::memory_order_relaxed);
  const Device device = *t.device;
  t.device.reset();
  std::vector<Mark> marks = std::move(t.marks);
  t.marks.clear();
  RETURN_IF_ERROR(t.error);
  ASSIGN_OR_RETURN(Mark end, Record("", device));
  RETURN_IF_ERROR(end.event.Synchronize());
  marks.push_back(std::move(end));

  absl::flat_hash_map<std::string, OpTime> by_name;
  for (size_t i = 0; i + 1 < marks.size(); ++i) {
    ASSIGN_OR_RETURN(const float ms, marks[i + 1].event.ElapsedMillisecondsSince(marks[i].event));
    OpTime& op = by_name[marks[i].name];
    op.name = marks[i].name;
    ++op.count;
    op.milliseconds += ms;
  }
  std::vector<OpTime> ops;
  ops.reserve(by_name.size());
  for (auto& [name, op] : by_name) ops.push_back(std::move(op));
  std::sort(ops.begin(), ops.end(), [](const OpTime& a, const OpTime& b) {
    return a.milliseconds != b.milliseconds ? a.milliseconds > b.milliseconds : a.name < b.name;
  });
  return ops;
}

}  // namespace usine
