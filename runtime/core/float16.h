// bfloat16 and IEEE half (float16) as storage types, with exact conversions to and from
// float: float -> 16 bits rounds to nearest, ties to even; Inf and NaN are preserved (a NaN
// stays a NaN with its sign, quieted). 16 bits -> float is exact. The same functions run on
// the host and in CUDA device code, so both sides round identically.
//
//   BFloat16 h = BFloat16::FromFloat(3.14159f);   // 3.140625
//   float back = h.ToFloat();
#ifndef USINE_RUNTIME_CORE_FLOAT16_H_
#define USINE_RUNTIME_CORE_FLOAT16_H_

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define USINE_HOST_DEVICE __host__ __device__
#else
#define USINE_HOST_DEVICE
#endif

namespace usine {
namespace float16_internal {

USINE_HOST_DEVICE inline uint32_t FloatBits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}

USINE_HOST_DEVICE inline float BitsToFloat(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace float16_internal

USINE_HOST_DEVICE inline uint16_t FloatToBFloat16Bits(float f) {
  uint32_t x = float16_internal::FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign and high payload, set quiet bit.
    return static_cast<uint16_t>((x >> 16) | 0x0040u);
  }
  x += 0x7fffu + ((x >> 16) & 1u);  // Round to nearest even; overflow carries into Inf.
  return static_cast<uint16_t>(x >> 16);
}

USINE_HOST_DEVICE inline float BFloat16BitsToFloat(uint16_t h) {
  return float16_internal::BitsToFloat(static_cast<uint32_t>(h) << 16);
}

USINE_HOST_DEVICE inline uint16_t FloatToFloat16Bits(float f) {
  const uint32_t x = float16_internal::FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // Inf, or NaN (quieted, high payload kept).
    return ax == 0x7f800000u ? static_cast<uint16_t>(sign | 0x7c00u)
                             : static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: Inf.
  if (ax < 0x38800000u) {                // Below 2^-14: a float16 subnormal (or zero).
    if (ax <= 0x33000000u) return sign;  // <= 2^-25, half the smallest subnormal: ties to 0.
    const uint32_t exponent = ax >> 23;
    const uint32_t mantissa = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // Value in units of 2^-24 is mantissa >> shift.
    uint32_t q = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u))) ++q;  // May carry into the normal range.
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t m = ax - 0x38000000u;    // Rebias the exponent from 127 to 15.
  m += 0x0fffu + ((m >> 13) & 1u);  // Round to nearest even on the 13 dropped bits.
  return static_cast<uint16_t>(sign | (m >> 13));
}

USINE_HOST_DEVICE inline float Float16BitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  int32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {
    return float16_internal::BitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return float16_internal::BitsToFloat(sign);
    exponent = 1;  // Normalise the subnormal.
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3ffu;
  }
  return float16_internal::BitsToFloat(sign | (static_cast<uint32_t>(exponent + 112) << 23) |
                                       (mantissa << 13));
}

// Storage types: 2 bytes, trivially copyable, layout-compatible with CUDA's __nv_bfloat16
// and __half.
struct BFloat16 {
  uint16_t bits;
  USINE_HOST_DEVICE static BFloat16 FromFloat(float f) { return {FloatToBFloat16Bits(f)}; }
  USINE_HOST_DEVICE float ToFloat() const { return BFloat16BitsToFloat(bits); }
};

struct Float16 {
  uint16_t bits;
  USINE_HOST_DEVICE static Float16 FromFloat(float f) { return {FloatToFloat16Bits(f)}; }
  USINE_HOST_DEVICE float ToFloat() const { return Float16BitsToFloat(bits); }
};

static_assert(sizeof(BFloat16) == 2 && sizeof(Float16) == 2);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_FLOAT16_H_
