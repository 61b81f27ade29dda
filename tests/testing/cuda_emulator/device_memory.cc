// Device memory (cuda_emulator.h, internal/memory.h): each allocation its own mapping, the data at
// its end, rounded up to 256 bytes, with the next page inaccessible and the bytes before the data
// and after its end canaries (0xFF: a NaN in f32 and bf16 alike). Under AddressSanitizer, exact-
// size heap blocks, which ASan guards.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include <sys/mman.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr size_t kAlignment = 256;  // cudaMalloc's.
constexpr size_t kPageBytes = 4096;
constexpr unsigned char kCanary = 0xFF;

struct Allocation {
  unsigned char* mapping;  // Null under AddressSanitizer.
  size_t mapping_bytes;
  size_t bytes;
  size_t slack;  // Canary bytes after the data (to the next 256 bytes).
  std::string name;
};

// By the data's address. Guarded by allocations_mu: allocations are made, freed and looked up
// from any host thread.
std::mutex allocations_mu;
std::map<uintptr_t, Allocation>& Allocations() {
  static std::map<uintptr_t, Allocation> allocations;
  return allocations;
}

size_t RoundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

void* MapGuarded(size_t bytes, Allocation& allocation) {
  const size_t rounded = RoundUp(bytes, kAlignment);
  const size_t body = RoundUp(kAlignment + rounded, kPageBytes);  // At least 256 canary bytes.
  void* mapping =
      mmap(nullptr, body + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return nullptr;
  allocation.mapping = static_cast<unsigned char*>(mapping);
  allocation.mapping_bytes = body + kPageBytes;
  if (mprotect(allocation.mapping + body, kPageBytes, PROT_NONE) != 0) {
    munmap(mapping, allocation.mapping_bytes);
    return nullptr;
  }
  std::memset(allocation.mapping, kCanary, body);
  allocation.slack = rounded - bytes;
  return allocation.mapping + body - rounded;
}

}  // namespace

bool InDeviceAllocation(const void* p, size_t bytes) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(allocations_mu);
  const std::map<uintptr_t, Allocation>& allocations = Allocations();
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return false;
  --it;
  return address + bytes <= it->first + it->second.bytes;
}

size_t DeviceBytesFrom(const void* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(allocations_mu);
  const std::map<uintptr_t, Allocation>& allocations = Allocations();
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return 0;
  --it;
  const uintptr_t end = it->first + it->second.bytes;
  return address < end ? end - address : 0;
}

bool FreeDeviceAllocation(void* p) {
  Allocation allocation;
  {
    std::lock_guard<std::mutex> lock(allocations_mu);
    auto it = Allocations().find(reinterpret_cast<uintptr_t>(p));
    if (it == Allocations().end()) return false;
    allocation = std::move(it->second);
    Allocations().erase(it);
  }
  // Before the addresses can come back.
  ForgetAccesses(p, static_cast<unsigned char*>(p) + allocation.bytes);
  if (allocation.mapping != nullptr) {
    munmap(allocation.mapping, allocation.mapping_bytes);
  } else {
    std::free(p);
  }
  return true;
}

void CheckDeviceGuards(const std::function<std::string()>& after) {
  if (cuda_emulator::kUsesAddressSanitizer) return;
  std::lock_guard<std::mutex> lock(allocations_mu);
  for (auto& [address, allocation] : Allocations()) {
    unsigned char* data = reinterpret_cast<unsigned char*>(address);
    const unsigned char* before =
        std::find_if(allocation.mapping, data, [](unsigned char c) { return c != kCanary; });
    if (before != data) {
      ReportError(
          "device array '%s' (%zu bytes): byte %td before its start was written (found "
          "after %s)",
          allocation.name.c_str(), allocation.bytes, data - before, after().c_str());
      std::memset(allocation.mapping, kCanary, data - allocation.mapping);  // Re-armed.
    }
    unsigned char* end = data + allocation.bytes;
    const unsigned char* past =
        std::find_if(end, end + allocation.slack, [](unsigned char c) { return c != kCanary; });
    if (past != end + allocation.slack) {
      ReportError(
          "device array '%s' (%zu bytes): byte %td past its end was written (found after "
          "%s)",
          allocation.name.c_str(), allocation.bytes, past - end, after().c_str());
      std::memset(end, kCanary, allocation.slack);  // Re-armed.
    }
  }
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

void* DeviceMalloc(size_t bytes, const char* name) {
  bytes = std::max<size_t>(bytes, 1);
  cuda_emulator_internal::Allocation allocation{nullptr, 0, bytes, 0, name};
  void* data = nullptr;
  if (kUsesAddressSanitizer) {
    if (posix_memalign(&data, cuda_emulator_internal::kAlignment, bytes) != 0) return nullptr;
  } else {
    data = cuda_emulator_internal::MapGuarded(bytes, allocation);
    if (data == nullptr) return nullptr;
  }
  std::lock_guard<std::mutex> lock(cuda_emulator_internal::allocations_mu);
  cuda_emulator_internal::Allocations().emplace(reinterpret_cast<uintptr_t>(data),
                                                std::move(allocation));
  return data;
}

void DeviceFree(void* p) {
  if (p != nullptr && !cuda_emulator_internal::FreeDeviceAllocation(p)) {
    cuda_emulator_internal::ReportError("DeviceFree of %p, not a device allocation", p);
  }
}

}  // namespace usine::testing::cuda_emulator
