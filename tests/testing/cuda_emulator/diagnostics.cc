// The emulator's reports (internal/diagnostics.h), and the count and latest of its errors
// (cuda_emulator.h).
#include "tests/testing/cuda_emulator/internal/diagnostics.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include <unistd.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/internal/call_site.h"
#include "tests/testing/cuda_emulator/internal/simt_state.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

// Errors may be reported from any host thread (a copy, a free) as well as from a launch.
std::mutex errors_mu;
int error_count = 0;
std::string last_error;

std::string VStringPrintf(const char* format, va_list args) {
  char text[8192];
  std::vsnprintf(text, sizeof(text), format, args);
  return text;
}

// What was running: the kernel and its launch, and the emulated thread with its call chain.
std::string LaunchContext() {
  const RunningLaunch& launch = CurrentLaunch();
  if (launch.kernel == nullptr) return "";
  std::string context = StringPrintf(
      "  kernel: %s\n  grid (%u,%u,%u), block (%u,%u,%u), dynamic shared memory %zu bytes\n",
      launch.name != nullptr ? launch.name : FunctionAt(launch.kernel).c_str(), launch.grid.x,
      launch.grid.y, launch.grid.z, launch.block.x, launch.block.y, launch.block.z,
      launch.shared_bytes);
  context += StringPrintf("  in block (%u,%u,%u)", launch.block_idx.x, launch.block_idx.y,
                          launch.block_idx.z);
  if (const EmulatedThread* thread = launch.running; thread != nullptr) {
    context +=
        StringPrintf(", warp %d, lane %d (thread %d)", thread->warp, thread->lane, thread->linear);
    const std::string chain = Describe(CaptureCallSite(thread->fiber), 8);
    if (!chain.empty()) context += ", at\n        " + chain;
  }
  return context + "\n";
}

// ", rank R" under mpirun (Open MPI's variable, or PMI's), where several processes share
// stderr; "" otherwise.
std::string RankTag() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"}) {
    const char* rank = std::getenv(name);
    if (rank != nullptr && rank[0] != '\0') return std::string(", rank ") + rank;
  }
  return "";
}

void Report(const char* kind, const std::string& message, bool with_launch = true) {
  std::fflush(stdout);
  std::fprintf(stderr, "\n[cuda emulator %s%s] %s\n%s", kind, RankTag().c_str(), message.c_str(),
               with_launch ? LaunchContext().c_str() : "");
  std::fflush(stderr);
}

void CountError(const std::string& message) {
  std::lock_guard<std::mutex> lock(errors_mu);
  last_error = message;
  ++error_count;
}

}  // namespace

std::string StringPrintf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::string text = VStringPrintf(format, args);
  va_end(args);
  return text;
}

void ReportError(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string message = VStringPrintf(format, args);
  va_end(args);
  CountError(message);
  Report("ERROR", message);
}

void ReportCallError(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string message = VStringPrintf(format, args);
  va_end(args);
  CountError(message);
  Report("ERROR", message, /*with_launch=*/false);
}

void ReportFatal(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string message = VStringPrintf(format, args);
  va_end(args);
  Report("FATAL", message);
  // No destructors or atexit handlers: the emulated threads' stacks are mid-kernel.
  _exit(cuda_emulator::kFatalExitStatus);
}

void Note(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string message = VStringPrintf(format, args);
  va_end(args);
  std::fprintf(stderr, "[cuda emulator] %s\n", message.c_str());
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

int ErrorCount() {
  std::lock_guard<std::mutex> lock(cuda_emulator_internal::errors_mu);
  return cuda_emulator_internal::error_count;
}

std::string LastErrorMessage() {
  std::lock_guard<std::mutex> lock(cuda_emulator_internal::errors_mu);
  return cuda_emulator_internal::last_error;
}

}  // namespace usine::testing::cuda_emulator
