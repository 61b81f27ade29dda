// The emulator's reports on stderr, each with the context of the running launch (kernel, grid,
// block, shared bytes; the emulated thread and its call chain): errors, after which the emulation
// goes on (counted: ErrorCount() in cuda_emulator.h), and fatal ones, after which it cannot (the
// process exits with kFatalExitStatus).
//
//   if (bytes_left_over) ReportError("thread %d ended with %zu copies not waited for", ...);
//   if (misaligned) ReportFatal("ldmatrix: shared address 0x%llx not aligned", ...);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_DIAGNOSTICS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_DIAGNOSTICS_H_

#include <string>

namespace usine::testing::cuda_emulator_internal {

void ReportError(const char* format, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void ReportFatal(const char* format, ...) __attribute__((format(printf, 1, 2)));

// An error (counted as ReportError's) about calls of the host, not the running launch: without
// the launch's context, which another host thread may be running.
void ReportCallError(const char* format, ...) __attribute__((format(printf, 1, 2)));

// A note on stderr without the launch's context, for what CUDA returns as an error code (a
// launch configuration it refuses) rather than what the emulator finds.
void Note(const char* format, ...) __attribute__((format(printf, 1, 2)));

std::string StringPrintf(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_DIAGNOSTICS_H_
