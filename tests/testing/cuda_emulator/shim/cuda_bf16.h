// CUDA's bfloat16 types and the conversions that the emulated kernel files use, for CUDA sources
// compiled as host C++ under the CUDA emulator (../README.md), in place of the toolkit's header
// of the same name. Conversions from f32 round to nearest, ties to even, as CUDA's _rn ones do,
// and turn a NaN into CUDA's canonical 0x7FFF. Add to it what another emulated file needs.
//
//   const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);  // lo in the low 16 bits
//   const float x = __bfloat162float(pair.x);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_BF16_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_BF16_H_

#include <bit>
#include <cstdint>

namespace usine::testing::cuda_emulator {

inline uint16_t Bf16BitsNearest(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

inline float FloatOfBf16Bits(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

}  // namespace usine::testing::cuda_emulator

// The member's name is CUDA's.
struct alignas(2) __nv_bfloat16 {
  unsigned short __x;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;  // x in the low 16 bits of the 32-bit word.
};

inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { return __nv_bfloat16{bits}; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  return __nv_bfloat16{::usine::testing::cuda_emulator::Bf16BitsNearest(f)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  return ::usine::testing::cuda_emulator::FloatOfBf16Bits(h.__x);
}
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return __nv_bfloat162{__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)};
}

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUDA_BF16_H_
