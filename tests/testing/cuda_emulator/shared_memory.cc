// Each block's dynamic shared memory and the shared window (internal/memory.h, kernel_launch.h,
// device_builtins.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/device_builtins.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/simt_state.h"
#include "tests/testing/cuda_emulator/kernel_launch.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr uint64_t kWindowBase = 0x400;  // The shared-window address of byte 0.
constexpr uint16_t kPoison = 0x7FC1;     // A bf16 NaN; two of them are the f32 NaN 0x7FC17FC1.
constexpr size_t kCanaryBytes = cuda_emulator::kUsesAddressSanitizer ? 0 : 256;
constexpr unsigned char kCanary = 0xFF;  // Read as f32 or bf16: a NaN, which the tests catch.

unsigned char* shared = nullptr;
size_t shared_bytes = 0;

}  // namespace

void StartBlockSharedMemory(size_t bytes) {
  void* memory = nullptr;
  if (posix_memalign(&memory, 128, std::max<size_t>(bytes + kCanaryBytes, 1)) != 0) {
    ReportFatal("cannot allocate %zu bytes of shared memory", bytes);
  }
  shared = static_cast<unsigned char*>(memory);
  shared_bytes = bytes;
  for (size_t i = 0; i + 1 < bytes; i += 2) std::memcpy(shared + i, &kPoison, 2);
  if (bytes % 2 != 0) shared[bytes - 1] = kPoison >> 8;
  std::memset(shared + bytes, kCanary, kCanaryBytes);
}

void EndBlockSharedMemory() {
  const unsigned char* end = shared + shared_bytes;
  const unsigned char* past =
      std::find_if(end, end + kCanaryBytes, [](unsigned char c) { return c != kCanary; });
  if (past != end + kCanaryBytes) {
    ReportError("write past the end of dynamic shared memory (%zu bytes): byte %td after it",
                shared_bytes, past - end);
  }
  std::free(shared);
  shared = nullptr;
  shared_bytes = 0;
}

unsigned char* SharedBytesAt(uint64_t address, size_t bytes, size_t alignment,
                             const std::string& what) {
  if (address < kWindowBase || address - kWindowBase + bytes > shared_bytes) {
    ReportFatal(
        "%s: shared address 0x%llx (+%zu bytes) outside the block's dynamic shared memory "
        "[0x%llx, 0x%llx)",
        what.c_str(), static_cast<unsigned long long>(address), bytes,
        static_cast<unsigned long long>(kWindowBase),
        static_cast<unsigned long long>(kWindowBase + shared_bytes));
  }
  if (address % alignment != 0) {
    ReportFatal("%s: shared address 0x%llx not aligned to %zu bytes", what.c_str(),
                static_cast<unsigned long long>(address), alignment);
  }
  return shared + (address - kWindowBase);
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

unsigned char* DynamicShared() {
  cuda_emulator_internal::RunningThread("dynamic shared memory");
  return cuda_emulator_internal::shared;
}

size_t SharedWindowAddress(const void* p) {
  const auto* byte = static_cast<const unsigned char*>(p);
  const unsigned char* shared = cuda_emulator_internal::shared;
  if (shared == nullptr || byte < shared || byte > shared + cuda_emulator_internal::shared_bytes) {
    cuda_emulator_internal::ReportFatal(
        "__cvta_generic_to_shared of %p, not in the block's dynamic shared memory [%p, %p)", p,
        static_cast<const void*>(shared),
        static_cast<const void*>(shared + cuda_emulator_internal::shared_bytes));
  }
  return cuda_emulator_internal::kWindowBase + static_cast<size_t>(byte - shared);
}

}  // namespace usine::testing::cuda_emulator
