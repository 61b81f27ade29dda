// The ways this build computes CRC-32C, for crc32c.cc's dispatch and for tests that check
// each one against the definition on whatever cpu runs them.
//
//   for (Crc32cKernel k : {Crc32cKernel::kSoftware, Crc32cKernel::kSse42,
//                          Crc32cKernel::kFoldAvx512}) {
//     if (Crc32cKernelRuns(k)) EXPECT_EQ(Crc32cExtendWith(k, 0, bytes), expected);
//   }
//
// kSoftware: slicing-by-8 tables. kSse42: the crc32 instruction over three interleaved
// streams, 8 bytes a cycle at best. kFoldAvx512: carry-less multiplications (VPCLMULQDQ) fold
// 256 bytes per step into four 512-bit accumulators, then the crc32 instruction reduces
// them. Their speeds: tests/runtime/core/crc32c_perf, docs/BENCHMARKS.md.
// Thread-safety: pure functions.
#ifndef USINE_RUNTIME_CORE_INTERNAL_CRC32C_KERNELS_H_
#define USINE_RUNTIME_CORE_INTERNAL_CRC32C_KERNELS_H_

#include <cstdint>

#include "absl/types/span.h"

namespace usine::core_internal {

enum class Crc32cKernel { kSoftware, kSse42, kFoldAvx512 };

// Whether this cpu (and its operating system) runs `kernel`.
bool Crc32cKernelRuns(Crc32cKernel kernel);

// Crc32cExtend(crc, data) computed by `kernel`. REQUIRES: Crc32cKernelRuns(kernel).
uint32_t Crc32cExtendWith(Crc32cKernel kernel, uint32_t crc, absl::Span<const uint8_t> data);

}  // namespace usine::core_internal

#endif  // USINE_RUNTIME_CORE_INTERNAL_CRC32C_KERNELS_H_
