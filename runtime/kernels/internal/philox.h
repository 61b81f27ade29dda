// Philox4x32-10 and the transforms from its 32-bit outputs to uniform and normal floats,
// written once for the host and CUDA devices. Every float operation is an IEEE operation
// rounded to nearest (no fused multiply-add, no library log/sin/cos, whose last bits differ
// between glibc and CUDA), so both sides produce the same bits.
#ifndef USINE_RUNTIME_KERNELS_INTERNAL_PHILOX_H_
#define USINE_RUNTIME_KERNELS_INTERNAL_PHILOX_H_

#include <cmath>
#include <cstdint>

#include "runtime/core/float16.h"  // USINE_HOST_DEVICE

namespace usine::kernels_internal {

struct Philox4 {
  uint32_t x[4];
};

USINE_HOST_DEVICE inline void MulHiLo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Philox4x32 with 10 rounds (Salmon et al., SC'11) of a 128-bit counter under a 64-bit key.
USINE_HOST_DEVICE inline Philox4 Philox4x32(Philox4 counter, uint32_t k0, uint32_t k1) {
  uint32_t c0 = counter.x[0], c1 = counter.x[1], c2 = counter.x[2], c3 = counter.x[3];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo(0xD2511F53u, c0, &hi0, &lo0);
    MulHiLo(0xCD9E8D57u, c2, &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

// The four outputs of counter block `block` under key `seed`: the counter is (block, 0).
USINE_HOST_DEVICE inline Philox4 PhiloxBlock(uint64_t seed, uint64_t block) {
  return Philox4x32({{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}},
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Correctly rounded IEEE operations that a compiler may not fuse.
USINE_HOST_DEVICE inline float Mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
USINE_HOST_DEVICE inline float Add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
USINE_HOST_DEVICE inline float Div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
USINE_HOST_DEVICE inline float Sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

// [0, 1) in steps of 2^-24.
USINE_HOST_DEVICE inline float UniformFromBits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * 5.9604644775390625e-8f;
}

// Natural log for x in (0, 1]: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
// log(m) = 2 atanh(s), s = (m - 1) / (m + 1), by its series (|s| < 0.172).
USINE_HOST_DEVICE inline float Log(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  int e = static_cast<int>((bits >> 23) & 0xffu) - 127;
  bits = (bits & 0x7fffffu) | 0x3f800000u;  // m in [1, 2)
  float m;
  memcpy(&m, &bits, sizeof(m));
  if (m > 1.41421356f) {
    m = Mul(m, 0.5f);
    ++e;
  }
  const float s = Div(Add(m, -1.0f), Add(m, 1.0f));
  const float z = Mul(s, s);
  float series = Add(Mul(z, 1.0f / 9.0f), 1.0f / 7.0f);
  series = Add(Mul(series, z), 1.0f / 5.0f);
  series = Add(Mul(series, z), 1.0f / 3.0f);
  series = Add(Mul(series, z), 1.0f);
  return Add(Mul(static_cast<float>(e), 0.693147180559945f), Mul(Mul(2.0f, s), series));
}

// sin and cos of 2*pi*turns for turns in [0, 1): reduce to a quarter turn k and a
// remainder angle in [-pi/4, pi/4], evaluate Taylor polynomials, rotate by k.
USINE_HOST_DEVICE inline void SinCosTurns(float turns, float* sin_out, float* cos_out) {
  const int k = static_cast<int>(Add(Mul(turns, 4.0f), 0.5f));  // round(4 * turns)
  const float r = Add(turns, Mul(static_cast<float>(k), -0.25f));
  const float a = Mul(r, 6.28318530717958648f);
  const float a2 = Mul(a, a);
  float s = Add(Mul(a2, 1.0f / 362880.0f), -1.0f / 5040.0f);
  s = Add(Mul(s, a2), 1.0f / 120.0f);
  s = Add(Mul(s, a2), -1.0f / 6.0f);
  s = Add(Mul(s, a2), 1.0f);
  s = Mul(s, a);
  float c = Add(Mul(a2, -1.0f / 3628800.0f), 1.0f / 40320.0f);
  c = Add(Mul(c, a2), -1.0f / 720.0f);
  c = Add(Mul(c, a2), 1.0f / 24.0f);
  c = Add(Mul(c, a2), -0.5f);
  c = Add(Mul(c, a2), 1.0f);
  switch (k & 3) {
    case 0:
      *sin_out = s, *cos_out = c;
      break;
    case 1:
      *sin_out = c, *cos_out = -s;
      break;
    case 2:
      *sin_out = -s, *cos_out = -c;
      break;
    default:
      *sin_out = -c, *cos_out = s;
      break;
  }
}

// Lane `lane` (0..3) of a block as a uniform float on [low, high).
USINE_HOST_DEVICE inline float UniformFromBlock(const Philox4& r, int lane, float low, float high) {
  return Add(low, Mul(Add(high, -low), UniformFromBits(r.x[lane])));
}

// Box-Muller pair `pair` (0 or 1) of a block as two normal floats: the block holds two pairs
// (lanes 0-1 and 2-3); the even lane takes the cosine branch, the odd lane the sine branch.
USINE_HOST_DEVICE inline void NormalPairFromBlock(const Philox4& r, int pair, float mean,
                                                  float stddev, float* even, float* odd) {
  const float u1 = Mul(static_cast<float>((r.x[2 * pair] >> 8) + 1u), 5.9604644775390625e-8f);
  const float u2 = UniformFromBits(r.x[2 * pair + 1]);
  const float radius = Sqrt(Mul(-2.0f, Log(u1)));
  float s, c;
  SinCosTurns(u2, &s, &c);
  *even = Add(mean, Mul(stddev, Mul(radius, c)));
  *odd = Add(mean, Mul(stddev, Mul(radius, s)));
}

// Lane `lane` of a block as a normal float (its pair's even or odd value).
USINE_HOST_DEVICE inline float NormalFromBlock(const Philox4& r, int lane, float mean,
                                               float stddev) {
  float even, odd;
  NormalPairFromBlock(r, lane / 2, mean, stddev, &even, &odd);
  return lane % 2 == 0 ? even : odd;
}

// Element `index` (= offset + i) of a stream lives in block index / 4, lane index % 4.
USINE_HOST_DEVICE inline float UniformElement(uint64_t seed, uint64_t index, float low,
                                              float high) {
  return UniformFromBlock(PhiloxBlock(seed, index / 4), static_cast<int>(index % 4), low, high);
}

USINE_HOST_DEVICE inline float NormalElement(uint64_t seed, uint64_t index, float mean,
                                             float stddev) {
  return NormalFromBlock(PhiloxBlock(seed, index / 4), static_cast<int>(index % 4), mean, stddev);
}

}  // namespace usine::kernels_internal

#endif  // USINE_RUNTIME_KERNELS_INTERNAL_PHILOX_H_
