// Call sites (internal/call_site.h): walks of a fiber's frame-pointer chain, and addr2line for
// their source locations, run once per address.
#include "tests/testing/cuda_emulator/internal/call_site.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <elf.h>
#include <unistd.h>

namespace usine::testing::cuda_emulator_internal {
namespace {

struct SourceFrame {
  std::string location;  // file:line
  std::string function;
};

std::string ExecutablePath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  path[n] = '\0';
  return path;
}

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

// The frames at code address `pc`, inlined ones first; empty when addr2line knows nothing.
const std::vector<SourceFrame>& SourceFramesAt(uintptr_t pc) {
  static std::map<uintptr_t, std::vector<SourceFrame>> cache;
  auto [it, inserted] = cache.try_emplace(pc);
  if (!inserted) return it->second;
  static const std::string executable = ExecutablePath();
  char command[8192];
  std::snprintf(command, sizeof(command), "addr2line -f -C -i -e '%s' 0x%lx 2>/dev/null",
                executable.c_str(), static_cast<unsigned long>(FileAddress(pc)));
  FILE* out = popen(command, "r");
  if (out == nullptr) return it->second;
  std::vector<std::string> lines;
  char line[8192];
  while (std::fgets(line, sizeof(line), out) != nullptr) {
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    lines.push_back(text);
  }
  pclose(out);
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
