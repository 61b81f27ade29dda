// Where an emulated thread is: the chain of return addresses from a primitive's caller up to the
// kernel (by frame pointers: emulated targets are built with -fno-omit-frame-pointer), and the
// same chain as source locations (addr2line on the running executable, inlined frames included)
// to compare and to report. Two lanes at one warp primitive must come from the same call site;
// the host compiler may duplicate a call (unrolling), so sites whose addresses differ are
// compared by their source locations.
//
//   const CallSite site = CaptureCallSite(thread.fiber);
//   if (!SameSourceLocation(site, warp.site)) ReportFatal("...%s", Describe(site).c_str());
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CALL_SITE_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CALL_SITE_H_

#include <string>

#include "tests/testing/cuda_emulator/internal/fiber.h"

namespace usine::testing::cuda_emulator_internal {

struct CallSite {
  static constexpr int kMaxDepth = 16;
  const void* return_addresses[kMaxDepth];
  int depth = 0;

  bool operator==(const CallSite& other) const;
};

// The call chain of the function calling CaptureCallSite, within `running`'s stack.
// REQUIRES: `running` is the running fiber.
CallSite CaptureCallSite(const Fiber& running);

bool SameSourceLocation(const CallSite& a, const CallSite& b);

// The chain as "file:line  [function]" lines, innermost first, the emulator's own frames left
// out; at most `frames` of them. Empty when none is left (or without debug information).
std::string Describe(const CallSite& site, int frames = CallSite::kMaxDepth);

// The function at `address` (demangled, with its file:line), e.g. a kernel's name.
std::string FunctionAt(const void* address);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CALL_SITE_H_
