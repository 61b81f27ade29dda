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
#include <signal.h>
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

// One addr2line process for the life of this one, answering addresses written to its stdin
// (it flushes each answer): the executable's debug information is read once, not per address.
// Each address goes with a sentinel, address 0, whose answer ("0x0...0", "??", "??:0") ends the
// one before it.
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
    if (to_ == nullptr) return lines;
    std::fprintf(to_, "0x%lx\n0\n", static_cast<unsigned long>(address));
    std::fflush(to_);
    std::string line;
    if (!ReadLine(line)) return Stop(lines);  // The echo of `address`.
    while (true) {
      if (!ReadLine(line)) return Stop(lines);
      if (line == "0x0000000000000000") break;
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
    int in[2], out[2];
    if (pipe(in) != 0) return;
    if (pipe(out) != 0) {
      close(in[0]);
      close(in[1]);
      return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      const int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, STDERR_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
      execlp("addr2line", "addr2line", "-a", "-f", "-C", "-i", "-e", path,
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
      close(in[1]);
      close(out[0]);
      return;
    }
    // A write after addr2line has gone (not installed) must fail, not end this process.
    signal(SIGPIPE, SIG_IGN);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }

  bool ReadLine(std::string& line) {
    char buffer[8192];
    if (std::fgets(buffer, sizeof(buffer), from_) == nullptr) return false;
    line = buffer;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return true;
  }

  // After a failure: no more queries (a reply half read would put later ones out of step).
  std::vector<std::string>& Stop(std::vector<std::string>& lines) {
    lines.clear();
    to_ = nullptr;
    return lines;
  }

  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
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
