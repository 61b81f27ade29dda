// Call sites (internal/call_site.h): walks of a fiber's frame-pointer chain, and addr2line for
// their source locations, asked once per address.
#include "tests/testing/cuda_emulator/internal/call_site.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace usine::testing::cuda_emulator_internal {
namespace {

struct SourceFrame {
  std::string location;  // file:line
  std::string function;
};

// The address addr2line knows `pc` by: as it is in a fixed-address executable, less the load
// address in a position-independent one.
uintptr_t FileAddress(uintptr_t pc) {
  Dl_info info;
  if (dladdr(reinterpret_cast<const void*>(pc), &info) == 0 || info.dli_fbase == nullptr) {
    return pc;
  }
  Elf64_Half type;
  std::memcpy(&type, static_cast<const char*>(info.dli_fbase) + offsetof(Elf64_Ehdr, e_type),
              sizeof(type));
  return type == ET_DYN ? pc - reinterpret_cast<uintptr_t>(info.dli_fbase) : pc;
}

// One addr2line process for the life of this one, answering addresses written to it (GNU's
// flushes each answer): the executable's debug information is read once, not per address.
// Each address goes with a sentinel, address 0, whose answer (its address line, "??", "??:0")
// ends the one before it. Over a socket, so that a write after addr2line has gone fails
// (MSG_NOSIGNAL) instead of raising SIGPIPE; an answer that takes over 30 s, or a reply out of
// step, ends the queries (sources are then unknown, as without addr2line).
class Addr2Line {
 public:
  static Addr2Line& Get() {
    static Addr2Line* instance = new Addr2Line;  // Left running until this process exits.
    return *instance;
  }

  // addr2line's lines for `address` (function, then file:line, inlined frames first); empty
  // when addr2line cannot run.
  std::vector<std::string> Lines(uintptr_t address) {
    std::vector<std::string> lines;
    if (socket_ < 0) return lines;
    char query[64];
    const int length =
        std::snprintf(query, sizeof(query), "0x%lx\n0\n", static_cast<unsigned long>(address));
    if (send(socket_, query, static_cast<size_t>(length), MSG_NOSIGNAL) != length) {
      return Stop(lines);
    }
    std::string line;
    if (!ReadLine(line) || !IsAddressLine(line)) return Stop(lines);  // The echo of `address`.
    while (true) {
      if (!ReadLine(line)) return Stop(lines);
      if (IsAddressLine(line)) break;  // The sentinel's: no frame line starts with "0x".
      lines.push_back(line);
    }
    if (!ReadLine(line) || !ReadLine(line)) return Stop(lines);  // The sentinel's "??", "??:0".
    return lines;
  }

 private:
  Addr2Line() {
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) return;
    path[n] = '\0';
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, ends[1], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, ends[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    char* argv[] = {const_cast<char*>("addr2line"),
                    const_cast<char*>("-a"),
                    const_cast<char*>("-f"),
                    const_cast<char*>("-C"),
                    const_cast<char*>("-i"),
                    const_cast<char*>("-e"),
                    path,
                    nullptr};
    const int spawned = posix_spawnp(&pid_, "addr2line", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(ends[1]);
    if (spawned != 0) {
      close(ends[0]);
      return;
    }
    socket_ = ends[0];
  }

  // An address line as `-a` writes it: "0x" and hex digits.
  static bool IsAddressLine(const std::string& line) {
    return line.size() > 2 && line.compare(0, 2, "0x") == 0 &&
           line.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos;
  }

  bool ReadLine(std::string& line) {
    while (true) {
      if (const size_t end = buffer_.find('\n'); end != std::string::npos) {
        line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
      }
      pollfd ready{socket_, POLLIN, 0};
      if (poll(&ready, 1, /*timeout_ms=*/30000) != 1) return false;
      char chunk[4096];
      const ssize_t got = read(socket_, chunk, sizeof(chunk));
      if (got <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }

  // After a failure: no more queries (a reply half read would put later ones out of step).
  std::vector<std::string>& Stop(std::vector<std::string>& lines) {
    lines.clear();
    close(socket_);
    socket_ = -1;
    // Ended and reaped at once: it may be the one that stopped answering.
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    return lines;
  }

  int socket_ = -1;
  pid_t pid_ = 0;
  std::string buffer_;  // Read, not yet returned.
};

// The frames at code address `pc`, inlined ones first; empty when addr2line knows nothing.
const std::vector<SourceFrame>& SourceFramesAt(uintptr_t pc) {
  static std::map<uintptr_t, std::vector<SourceFrame>> cache;
  auto [it, inserted] = cache.try_emplace(pc);
  if (!inserted) return it->second;
  const std::vector<std::string> lines = Addr2Line::Get().Lines(FileAddress(pc));
  for (size_t i = 0; i + 1 < lines.size(); i += 2) {  // Function, then file:line.
    std::string location = lines[i + 1];
    const size_t discriminator = location.find(" (discriminator");
    if (discriminator != std::string::npos) location.resize(discriminator);
    if (location.rfind("??", 0) == 0) continue;
    it->second.push_back({location, lines[i]});
  }
  return it->second;
}

// The call is the instruction before the return address.
const std::vector<SourceFrame>& CallFramesAt(const void* return_address) {
  return SourceFramesAt(reinterpret_cast<uintptr_t>(return_address) - 1);
}

// The emulator's own frames (its sources, not its tests) and the standard library's (std::apply
// and the like) are left out of sites: the kernel's are what a report is about.
bool IsEmulatorFrame(const SourceFrame& frame) {
  static const std::string directory = [] {
    std::string file = __FILE__;
    return file.substr(0, file.rfind('/') + 1);
  }();
  const bool emulator_source =
      frame.location.rfind(directory, 0) == 0 && frame.location.find("_test.") == std::string::npos;
  return emulator_source || frame.location.find("/c++/") != std::string::npos;
}

// The return addresses of the frame chain from `frame` up, within [low, high).
CallSite WalkFrames(uintptr_t frame, uintptr_t low, uintptr_t high) {
  CallSite site;
  while (site.depth < CallSite::kMaxDepth && frame >= low && frame + 16 <= high) {
    const void* return_address = *reinterpret_cast<void* const*>(frame + 8);
    if (return_address == nullptr) break;
    site.return_addresses[site.depth++] = return_address;
    const uintptr_t caller = *reinterpret_cast<const uintptr_t*>(frame);
    if (caller <= frame) break;
    frame = caller;
  }
  return site;
}

std::vector<const SourceFrame*> KernelFrames(const CallSite& site) {
  std::vector<const SourceFrame*> frames;
  for (int i = 0; i < site.depth; ++i) {
    for (const SourceFrame& frame : CallFramesAt(site.return_addresses[i])) {
      if (!IsEmulatorFrame(frame)) frames.push_back(&frame);
    }
  }
  return frames;
}

}  // namespace

bool CallSite::operator==(const CallSite& other) const {
  if (depth != other.depth) return false;
  for (int i = 0; i < depth; ++i) {
    if (return_addresses[i] != other.return_addresses[i]) return false;
  }
  return true;
}

__attribute__((noinline)) CallSite CaptureCallSite(const Fiber& running) {
  return WalkFrames(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), running.stack_low(),
                    running.stack_high());
}

bool SameSourceLocation(const CallSite& a, const CallSite& b) {
  if (a == b) return true;
  const std::vector<const SourceFrame*> fa = KernelFrames(a), fb = KernelFrames(b);
  // No source frames (no addr2line, no debug information): only equal addresses match.
  if (fa.empty() || fb.empty() || fa.size() != fb.size()) return false;
  for (size_t i = 0; i < fa.size(); ++i) {
    if (fa[i]->location != fb[i]->location) return false;
  }
  return true;
}

std::string Describe(const CallSite& site, int frames) {
  std::string text;
  int shown = 0;
  for (const SourceFrame* frame : KernelFrames(site)) {
    if (shown++ == frames) break;
    if (!text.empty()) text += "\n        <- ";
    text += frame->location + "  [" + frame->function + "]";
  }
  return text;
}

std::string FunctionAt(const void* address) {
  const std::vector<SourceFrame>& frames = SourceFramesAt(reinterpret_cast<uintptr_t>(address));
  if (frames.empty()) {
    char text[32];
    std::snprintf(text, sizeof(text), "%p", address);
    return text;
  }
  return frames.back().function + " (" + frames.back().location + ")";
}

}  // namespace usine::testing::cuda_emulator_internal
