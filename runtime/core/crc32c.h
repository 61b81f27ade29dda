// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), the checksum that token
// shard manifests and checkpoints record for their files.
//
//   uint32_t crc = Crc32c(bytes);                       // one buffer
//   uint32_t crc = Crc32cExtend(Crc32c(head), tail);    // == Crc32c(head + tail)
//   ASSIGN_OR_RETURN(uint32_t crc, Crc32cOfFile(path));
//
// The fastest way this cpu has (internal/crc32c_kernels.h): carry-less multiplication folding
// with AVX-512 and VPCLMULQDQ (on one core of the development VM, 55 GB/s from the cache and
// 23 from memory), else SSE 4.2's crc32 instruction over three interleaved streams (26 and
// 16), else table-driven software (slicing-by-8, 2); docs/BENCHMARKS.md. Results match
// RFC 3720's known answers (32 zero bytes -> 0x8A9136AA).
//
// CRCs combine without the bytes (zlib's crc32_combine algebra): a CRC register times
// x^(8n) mod P is the register after n more zero bytes, so
//   Crc32c(a + b) == Crc32cCombine(Crc32c(a), Crc32c(b), b.size()).
// Thread-safety: pure functions; safe from any thread.
#ifndef USINE_RUNTIME_CORE_CRC32C_H_
#define USINE_RUNTIME_CORE_CRC32C_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace usine {

// The CRC of `data` continued from `crc`, the CRC of the bytes before it (0 for none).
uint32_t Crc32cExtend(uint32_t crc, absl::Span<const uint8_t> data);

inline uint32_t Crc32c(absl::Span<const uint8_t> data) { return Crc32cExtend(0, data); }
inline uint32_t Crc32c(absl::string_view data) {
  return Crc32c(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// (a * b) mod P over GF(2), bit-reflected as CRC registers are.
uint32_t Crc32cMultiply(uint32_t a, uint32_t b);
// x^(8n) mod P: Crc32cMultiply by it appends n zero bytes to a CRC register.
uint32_t Crc32cZerosOperator(uint64_t n);
// The CRC of a + b from the CRCs of a and b and the length of b.
inline uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return Crc32cMultiply(Crc32cZerosOperator(length_b), crc_a) ^ crc_b;
}

// The CRC of the whole file at `path`, read in blocks. An error names the path.
[[nodiscard]] absl::StatusOr<uint32_t> Crc32cOfFile(const std::string& path);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_CRC32C_H_
