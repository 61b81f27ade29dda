// The emulator's two memories, as the PTX executor and the scheduler use them. Device memory
// (device_memory.cc): the allocations of DeviceMalloc, guarded, thread-safe. A block's dynamic
// shared memory (shared_memory.cc): exactly the launch's bytes, poisoned with bf16 NaNs (0x7FC1),
// then canary bytes checked when the block ends (under AddressSanitizer, exact-size heap blocks
// instead of guards and canaries). Shared-window addresses, what __cvta_generic_to_shared gives and
// ldmatrix and cp.async take, start above 0, so that 0 is never a valid one.
//
//   unsigned char* row = SharedBytesAt(address, 16, 16, "ldmatrix row");
//   if (!InDeviceAllocation(source, 16)) ReportFatal(...);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_MEMORY_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace usine::testing::cuda_emulator_internal {

// Whether [p, p + bytes) lies within one device allocation.
bool InDeviceAllocation(const void* p, size_t bytes);
// The bytes from `p` to the end of its device allocation; 0 when `p` is in none.
size_t DeviceBytesFrom(const void* p);

// Frees the device allocation that starts at `p`; false (nothing freed) when none does.
bool FreeDeviceAllocation(void* p);

// Reports an error for each allocation whose canaries were written, found after `after()` (what
// ran last, asked only for a report), then re-arms them.
void CheckDeviceGuards(const std::function<std::string()>& after);

// The running block's dynamic shared memory, allocated as the block starts and checked and freed
// as it ends.
void StartBlockSharedMemory(size_t bytes);
void EndBlockSharedMemory();

// [address, address + bytes) of the shared window; a fatal error (naming `what`) unless within
// the block's dynamic shared memory and aligned to `alignment`.
unsigned char* SharedBytesAt(uint64_t address, size_t bytes, size_t alignment,
                             const std::string& what);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_MEMORY_H_
