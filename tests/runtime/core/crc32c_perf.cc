// crc32c_perf: the speed of each CRC-32C kernel this cpu runs, from memory (one pass over
// 512 MiB) and from the cache (1 MiB, checksummed again and again), best of 5. Not a test:
// its figures go to docs/BENCHMARKS.md.
//
//   build/tests/runtime/core/crc32c_perf
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "absl/time/clock.h"
#include "absl/types/span.h"

#include "runtime/core/internal/crc32c_kernels.h"

namespace {

using usine::core_internal::Crc32cKernel;

// GB/s of `kernel` over `passes` passes of `bytes`, best of 5.
double Rate(Crc32cKernel kernel, absl::Span<const uint8_t> bytes, int passes, uint32_t* sink) {
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    const absl::Time start = absl::Now();
    for (int p = 0; p < passes; ++p) {
      *sink ^= usine::core_internal::Crc32cExtendWith(kernel, *sink, bytes);
    }
    best = std::min(best, absl::ToDoubleSeconds(absl::Now() - start));
  }
  return static_cast<double>(bytes.size()) * passes / best / 1e9;
}

}  // namespace

int main() {
  std::vector<uint8_t> memory(size_t{512} << 20);
  for (size_t i = 0; i < memory.size(); ++i)
    memory[i] = static_cast<uint8_t>(i * 2654435761u >> 24);
  const absl::Span<const uint8_t> all(memory);
  const absl::Span<const uint8_t> cached = all.subspan(0, size_t{1} << 20);
  uint32_t sink = 0;
  std::printf("# crc32c_perf: GB/s on one thread, best of 5\n");
  std::printf("#      kernel    from memory (512 MiB)    from cache (1 MiB x 512)\n");
  const struct {
    Crc32cKernel kernel;
    const char* name;
  } kernels[] = {{Crc32cKernel::kSoftware, "software"},
                 {Crc32cKernel::kSse42, "sse4.2"},
                 {Crc32cKernel::kFoldAvx512, "fold-avx512"}};
  for (const auto& k : kernels) {
    if (!usine::core_internal::Crc32cKernelRuns(k.kernel)) {
      std::printf("%13s    not on this cpu\n", k.name);
      continue;
    }
    const int passes = k.kernel == Crc32cKernel::kSoftware ? 64 : 512;
    std::printf("%13s    %21.1f    %24.1f\n", k.name, Rate(k.kernel, all, 1, &sink),
                Rate(k.kernel, cached, passes, &sink));
  }
  return sink == 0x12345678u ? 1 : 0;  // Keeps the CRCs from being optimised away.
}
