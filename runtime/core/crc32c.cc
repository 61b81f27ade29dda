#include "runtime/core/crc32c.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/internal/crc32c_kernels.h"

namespace usine {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, bit-reversed.

// kTables[0] is the byte-at-a-time table; kTables[k][b] is the CRC of byte b followed by k
// zero bytes, which lets eight bytes be folded in per step (slicing-by-8).
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    t[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the 8-byte step reads little-endian");

// The register after `n` bytes at `p`, from register `crc` (no inversions), in software.
uint32_t ExtendSoftware(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= crc;
    crc = kTables[7][word & 0xFF] ^ kTables[6][(word >> 8) & 0xFF] ^
          kTables[5][(word >> 16) & 0xFF] ^ kTables[4][(word >> 24) & 0xFF] ^
          kTables[3][(word >> 32) & 0xFF] ^ kTables[2][(word >> 40) & 0xFF] ^
          kTables[1][(word >> 48) & 0xFF] ^ kTables[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(__x86_64__)
// The same with SSE 4.2's crc32 instruction. It has a latency of 3 cycles and a throughput
// of 1, so large buffers run as three independent streams over consecutive blocks, joined
// by multiplying by x^(8 * kBlock) (the cost of two multiplications per 48 KiB).
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const uint8_t* p, size_t n) {
  constexpr size_t kBlock = 16 << 10;
  static const uint32_t kBlockShift = Crc32cZerosOperator(kBlock);
  auto load = [](const uint8_t* q) {
    uint64_t word;
    std::memcpy(&word, q, 8);
    return word;
  };
  while (n >= 3 * kBlock) {
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < kBlock; i += 8) {
      a = _mm_crc32_u64(a, load(p + i));
      b = _mm_crc32_u64(b, load(p + kBlock + i));
      c = _mm_crc32_u64(c, load(p + 2 * kBlock + i));
    }
    crc = Crc32cMultiply(kBlockShift, Crc32cMultiply(kBlockShift, static_cast<uint32_t>(a)) ^
                                          static_cast<uint32_t>(b)) ^
          static_cast<uint32_t>(c);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  uint64_t r = crc;
  for (; n >= 8; p += 8, n -= 8) r = _mm_crc32_u64(r, load(p));
  crc = static_cast<uint32_t>(r);
  for (; n > 0; --n) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

// x^k mod P, bit-reflected.
uint32_t PowerOfX(uint64_t k) {
  return Crc32cMultiply(uint32_t{1} << (31 - k % 8), Crc32cZerosOperator(k / 8));
}

// The same by folding. The bytes are a polynomial over GF(2) whose first bit has the highest
// power. A 128-bit lane loaded from memory holds at bit i the coefficient of x^(127-i) of its
// 16 bytes: its low 64 bits are the lane's high half H, its high 64 bits its low half L. A
// lane followed by d more bits is congruent mod P to H * x^(64+d) + L * x^d, two carry-less
// products of 64 bits by 32-bit constants. A product of reflected operands comes out one
// bit short of the lane's frame, which the constants absorb (x^(d+63) and x^(d-1) mod P,
// reflected into the high half of 64 bits). Folding every lane forward by the 256 bytes of a
// step and xoring in the next 256 keeps the four accumulators congruent to everything read
// so far; as 256 bytes of data they then have the register of the whole (from a zero
// register), which the crc32 instruction computes, and it goes on with the tail.
__attribute__((target("avx512f,vpclmulqdq,sse4.2"))) uint32_t ExtendFoldAvx512(uint32_t crc,
                                                                               const uint8_t* p,
                                                                               size_t n) {
  constexpr size_t kStep = 256;
  if (n < 2 * kStep) return ExtendSse42(crc, p, n);
  static const long long kHigh = static_cast<long long>(uint64_t{PowerOfX(8 * kStep + 63)} << 32);
  static const long long kLow = static_cast<long long>(uint64_t{PowerOfX(8 * kStep - 1)} << 32);
  const __m512i k = _mm512_set_epi64(kLow, kHigh, kLow, kHigh, kLow, kHigh, kLow, kHigh);
  __m512i a0 = _mm512_loadu_si512(p);
  __m512i a1 = _mm512_loadu_si512(p + 64);
  __m512i a2 = _mm512_loadu_si512(p + 128);
  __m512i a3 = _mm512_loadu_si512(p + 192);
  // The incoming register counts as xored into the first four bytes.
  a0 = _mm512_xor_si512(a0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(crc))));
  for (p += kStep, n -= kStep; n >= kStep; p += kStep, n -= kStep) {
    // 0x96: the xor of the three operands.
    a0 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a0, k, 0x00),
                                   _mm512_clmulepi64_epi128(a0, k, 0x11), _mm512_loadu_si512(p),
                                   0x96);
    a1 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a1, k, 0x00),
                                   _mm512_clmulepi64_epi128(a1, k, 0x11),
                                   _mm512_loadu_si512(p + 64), 0x96);
    a2 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a2, k, 0x00),
                                   _mm512_clmulepi64_epi128(a2, k, 0x11),
                                   _mm512_loadu_si512(p + 128), 0x96);
    a3 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a3, k, 0x00),
                                   _mm512_clmulepi64_epi128(a3, k, 0x11),
                                   _mm512_loadu_si512(p + 192), 0x96);
  }
  alignas(64) uint8_t folded[kStep];
  _mm512_store_si512(folded, a0);
  _mm512_store_si512(folded + 64, a1);
  _mm512_store_si512(folded + 128, a2);
  _mm512_store_si512(folded + 192, a3);
  return ExtendSse42(ExtendSse42(0, folded, kStep), p, n);
}
#endif

// The register after `n` bytes at `p` from register `crc` (no inversions) with `kernel`.
uint32_t ExtendRegister(core_internal::Crc32cKernel kernel, uint32_t crc, const uint8_t* p,
                        size_t n) {
  switch (kernel) {
#if defined(__x86_64__)
    case core_internal::Crc32cKernel::kFoldAvx512:
      return ExtendFoldAvx512(crc, p, n);
    case core_internal::Crc32cKernel::kSse42:
      return ExtendSse42(crc, p, n);
#endif
    default:
      return ExtendSoftware(crc, p, n);
  }
}

core_internal::Crc32cKernel FastestKernel() {
  using core_internal::Crc32cKernel;
  for (Crc32cKernel k : {Crc32cKernel::kFoldAvx512, Crc32cKernel::kSse42}) {
    if (core_internal::Crc32cKernelRuns(k)) return k;
  }
  return Crc32cKernel::kSoftware;
}

}  // namespace

namespace core_internal {

bool Crc32cKernelRuns(Crc32cKernel kernel) {
  switch (kernel) {
    case Crc32cKernel::kSoftware:
      return true;
#if defined(__x86_64__)
    case Crc32cKernel::kSse42:
      return __builtin_cpu_supports("sse4.2");
    case Crc32cKernel::kFoldAvx512:
      return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("vpclmulqdq");
#endif
    default:
      return false;
  }
}

uint32_t Crc32cExtendWith(Crc32cKernel kernel, uint32_t crc, absl::Span<const uint8_t> data) {
  return ~ExtendRegister(kernel, ~crc, data.data(), data.size());
}

}  // namespace core_internal

uint32_t Crc32cMultiply(uint32_t a, uint32_t b) {
  if (a == 0) return 0;
  uint32_t m = uint32_t{1} << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return p;
}

uint32_t Crc32cZerosOperator(uint64_t n) {
  // powers[k] = x^(2^k) mod P.
  static const std::array<uint32_t, 64> powers = [] {
    std::array<uint32_t, 64> t{};
    uint32_t p = uint32_t{1} << 30;  // x^1
    t[0] = p;
    for (int k = 1; k < 64; ++k) t[k] = p = Crc32cMultiply(p, p);
    return t;
  }();
  uint32_t p = uint32_t{1} << 31;  // x^0
  for (unsigned k = 3; n != 0 && k < 64; n >>= 1, ++k) {
    if (n & 1) p = Crc32cMultiply(powers[k], p);
  }
  return p;
}

uint32_t Crc32cExtend(uint32_t crc, absl::Span<const uint8_t> data) {
  static const core_internal::Crc32cKernel kFastest = FastestKernel();
  return ~ExtendRegister(kFastest, ~crc, data.data(), data.size());
}

absl::StatusOr<uint32_t> Crc32cOfFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  std::vector<uint8_t> buffer(1 << 20);
  uint32_t crc = 0;
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(error),
                          absl::StrCat(path, ": cannot read: ", std::strerror(error)));
    }
    crc = Crc32cExtend(crc, absl::MakeConstSpan(buffer.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return crc;
}

}  // namespace usine
