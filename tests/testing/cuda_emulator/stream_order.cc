// The streams' vector clocks and the recent accesses of device memory (internal/stream_order.h).
// Each stream's clock holds, for every stream, how many of that stream's calls are ordered
// before the stream's next call; the host has such a clock too, joined into a stream's at each
// call the host issues on it.
#include "tests/testing/cuda_emulator/internal/stream_order.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/testing/cuda_emulator/internal/call_site.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/memory.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

using StreamId = uint64_t;  // 0: the default stream; then one per stream created.
using Clock = std::map<StreamId, uint64_t>;

void Join(Clock& into, const Clock& from) {
  for (const auto& [stream, count] : from) {
    uint64_t& mine = into[stream];
    mine = std::max(mine, count);
  }
}

uint64_t At(const Clock& clock, StreamId stream) {
  auto it = clock.find(stream);
  return it == clock.end() ? 0 : it->second;
}

struct RecentAccess {
  uintptr_t begin, end;
  StreamId stream;
  uint64_t count;  // The stream's count of calls at this one (its clock's own entry).
  bool write;
  const char* call;    // Or null for a kernel's launch:
  const void* kernel;  // the kernel at this address,
  const char* name;    // named so, or (null) by FunctionAt.
  const char* what;
};

std::string Describe(const RecentAccess& access) {
  if (access.call != nullptr) return std::string(access.call) + " " + access.what;
  const std::string kernel =
      access.name != nullptr ? std::string(access.name) : FunctionAt(access.kernel);
  return "kernel " + kernel + ": " + access.what;
}

// Who made an access, to report each pair once.
std::tuple<const char*, const void*, const char*> Maker(const RecentAccess& access) {
  return {access.call, access.kernel, access.what};
}

struct StreamOrder {
  std::mutex mu;
  std::map<const void*, StreamId> ids;  // Live streams but the default one.
  StreamId next_id = 1;
  std::set<StreamId> blocking;          // Live streams created without cudaStreamNonBlocking.
  std::map<StreamId, Clock> streams;    // Live streams' clocks.
  std::map<const void*, Clock> events;  // Recorded events.
  Clock host;
  std::deque<RecentAccess> recent;
  std::map<StreamId, size_t> recent_by_stream;  // How many of `recent` each stream made.
  // Each pair of makers once for each place where the earlier access began.
  std::set<std::tuple<std::tuple<const char*, const void*, const char*>,
                      std::tuple<const char*, const void*, const char*>, uintptr_t>>
      reported;
};

StreamOrder& TheStreamOrder() {
  static StreamOrder* const order = new StreamOrder;
  return *order;
}

StreamId IdOf(StreamOrder& s, cudaStream_t stream) {
  if (stream == nullptr) return 0;
  auto it = s.ids.find(stream);
  if (it != s.ids.end()) return it->second;
  const StreamId id = s.next_id++;  // A stream the emulator never saw created: its own.
  s.ids.emplace(stream, id);
  return id;
}

std::string StreamName(StreamId id) {
  return id == 0 ? std::string("the default stream")
                 : StringPrintf("stream #%llu", static_cast<unsigned long long>(id));
}

// The stream's clock for a call the host issues now, before its own count is advanced: joined
// with the host's, and between the default stream and the blocking ones, with the other side's.
Clock& ClockForCall(StreamOrder& s, StreamId id) {
  Clock& clock = s.streams[id];
  Join(clock, s.host);
  if (id == 0) {
    for (StreamId blocking : s.blocking) Join(clock, s.streams[blocking]);
  } else if (s.blocking.count(id) != 0) {
    Join(clock, s.streams[0]);
  }
  return clock;
}

void Check(StreamOrder& s, StreamId id, const Clock& clock, const RecentAccess& access) {
  if (s.recent_by_stream.empty() ||
      (s.recent_by_stream.size() == 1 && s.recent_by_stream.begin()->first == id)) {
    return;  // No other stream's access to meet (most calls of most programs).
  }
  for (const RecentAccess& earlier : s.recent) {
    if (earlier.stream == id || (!earlier.write && !access.write)) continue;
    if (earlier.end <= access.begin || access.end <= earlier.begin) continue;
    if (At(clock, earlier.stream) >= earlier.count) continue;  // Ordered before.
    if (!s.reported.emplace(Maker(earlier), Maker(access), earlier.begin).second) continue;
    ReportCallError(
        "%s on %s %s [0x%llx, +%llu), which %s on %s %s, with nothing ordering the two (no "
        "event waited for, no host wait): a GPU may run them in either order or at once",
        Describe(access).c_str(), StreamName(id).c_str(), access.write ? "writes" : "reads",
        static_cast<unsigned long long>(access.begin),
        static_cast<unsigned long long>(access.end - access.begin), Describe(earlier).c_str(),
        StreamName(earlier.stream).c_str(), earlier.write ? "wrote" : "read");
  }
}

void Issue(const char* call, const void* kernel, const char* name, cudaStream_t stream,
           const DeviceAccess* accesses, size_t count) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  const StreamId id = IdOf(s, stream);
  Clock& clock = ClockForCall(s, id);
  ++clock[id];
  std::vector<RecentAccess> made;
  for (const DeviceAccess& access : std::span<const DeviceAccess>(accesses, count)) {
    if (access.p == nullptr || access.bytes == 0) continue;
    const size_t extent = std::min(access.bytes, DeviceBytesFrom(access.p));
    if (extent == 0) continue;  // Host memory.
    const auto begin = reinterpret_cast<uintptr_t>(access.p);
    made.push_back({begin, begin + extent, id, At(clock, id), access.kind == DeviceAccess::kWrite,
                    call, kernel, name, access.what});
    Check(s, id, clock, made.back());
  }
  for (RecentAccess& access : made) {
    ++s.recent_by_stream[access.stream];
    s.recent.push_back(std::move(access));
    if (s.recent.size() > kRecentAccesses) {
      auto oldest = s.recent_by_stream.find(s.recent.front().stream);
      if (--oldest->second == 0) s.recent_by_stream.erase(oldest);
      s.recent.pop_front();
    }
  }
}

}  // namespace

void IssueOnStream(const char* call, cudaStream_t stream,
                   std::initializer_list<DeviceAccess> accesses) {
  Issue(call, nullptr, nullptr, stream, accesses.begin(), accesses.size());
}

void IssueKernelOnStream(const void* kernel, const char* name, cudaStream_t stream,
                         const std::vector<DeviceAccess>& accesses) {
  Issue(nullptr, kernel, name, stream, accesses.data(), accesses.size());
}

void StreamCreated(cudaStream_t stream, bool blocking) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  const StreamId id = s.next_id++;  // A new id even where a destroyed stream's handle is reused.
  s.ids[stream] = id;
  if (blocking) s.blocking.insert(id);
}

void StreamDestroyed(cudaStream_t stream) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  // Its calls still run to completion on a GPU: the recent accesses keep its id, and other
  // clocks their counts of its calls; no call joins its clock again.
  auto it = s.ids.find(stream);
  if (it == s.ids.end()) return;
  s.blocking.erase(it->second);
  s.streams.erase(it->second);
  s.ids.erase(it);
}

void EventDestroyed(cudaEvent_t event) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  s.events.erase(event);
}

void RecordEvent(cudaEvent_t event, cudaStream_t stream) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  s.events[event] = ClockForCall(s, IdOf(s, stream));
}

void WaitForEvent(cudaStream_t stream, cudaEvent_t event) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  auto recorded = s.events.find(event);
  if (recorded == s.events.end()) return;  // Never recorded: nothing to wait for.
  Join(ClockForCall(s, IdOf(s, stream)), recorded->second);
}

void HostWaitsForEvent(cudaEvent_t event) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  auto recorded = s.events.find(event);
  if (recorded != s.events.end()) Join(s.host, recorded->second);
}

void HostWaitsForStream(cudaStream_t stream) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  Join(s.host, s.streams[IdOf(s, stream)]);
}

void HostWaitsForDevice() {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  for (const auto& [id, clock] : s.streams) Join(s.host, clock);
  // Every call so far is ordered before whatever the host issues next: no access of theirs can
  // race again (and freed memory may come back at the same addresses).
  s.recent.clear();
  s.recent_by_stream.clear();
  s.reported.clear();
}

void ForgetAccesses(const void* begin, const void* end) {
  StreamOrder& s = TheStreamOrder();
  std::lock_guard<std::mutex> lock(s.mu);
  const auto b = reinterpret_cast<uintptr_t>(begin), e = reinterpret_cast<uintptr_t>(end);
  std::deque<RecentAccess> kept;
  for (RecentAccess& access : s.recent) {
    if (access.end <= b || e <= access.begin) {
      kept.push_back(std::move(access));
    } else if (--s.recent_by_stream[access.stream] == 0) {
      s.recent_by_stream.erase(access.stream);
    }
  }
  s.recent = std::move(kept);
}

}  // namespace usine::testing::cuda_emulator_internal
