// exp and tanh for the cpu layers' loops, four floats at a time. The softmaxes, the
// cross-entropy and GELU spent most of their time in std::exp and std::tanh, one library call
// per element (in double, for the exp); Exp(Float4) is a branch-free expf (Cody-Waite range
// reduction, Cephes' degree-6 polynomial, within 1 ulp of the exact value) on one 16-byte
// register, which every x86-64 (SSE2) and arm64 (NEON) cpu has. The lanes are written out
// with GCC/Clang vector types rather than left to the auto-vectoriser, which at -O2 and
// with IEEE exception semantics (-ftrapping-math) leaves such loops scalar.
//
// The same functions take 8 and 16 lanes (FloatLanes<8>, FloatLanes<16>) for code compiled
// for AVX2 or AVX-512 (a function with __attribute__((target(...), flatten)), chosen at run
// time): each lane does the same IEEE operations in the same order as in a Float4, so the
// results are the same bits, as long as nothing contracts a product and a sum into an FMA
// (the cpu loops are compiled with -ffp-contract=off; usine_cpu_loops). NaN payloads aside:
// where two NaNs meet in a sum, which one comes out may depend on the operand order the
// compiler picked.
//
//   for (j = 0; j + 4 <= n; j += 4) Store(out + j, Exp(Load(in + j) - max));
//   for (; j < n; ++j) out[j] = Exp(in[j] - max);
//
// The double overloads are std::exp and std::tanh, so that the f64 layers (which the
// finite-difference tests check) keep their full precision. Pure functions: thread-safe, the
// same bits for the same input on a given machine, in any lane.
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_EXP_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_EXP_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace usine::nn_internal {

// `kLanes` floats (4, 8 or 16) in one vector, and as many int32 lanes, as comparisons give.
template <int kLanes>
struct Lanes {
  typedef float Float __attribute__((vector_size(4 * kLanes)));
  typedef int32_t Int __attribute__((vector_size(4 * kLanes)));
};
template <int kLanes>
using FloatLanes = typename Lanes<kLanes>::Float;
template <int kLanes>
using IntLanes = typename Lanes<kLanes>::Int;

using Float4 = FloatLanes<4>;
using Int4 = IntLanes<4>;

// The number of lanes of a FloatLanes type.
template <typename F>
inline constexpr int kLanesOf = static_cast<int>(sizeof(F) / sizeof(float));

// The lane-generic helpers are always inlined, so that in a function compiled for AVX2 or
// AVX-512 they are compiled for it too, at -O0 as well: no wide vector crosses a call.
template <typename F = Float4>
[[gnu::always_inline]] inline F Load(const float* p) {
  F v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename F>
[[gnu::always_inline]] inline void Store(float* p, F v) {
  std::memcpy(p, &v, sizeof(v));
}
template <typename F>
[[gnu::always_inline]] inline F Splat(float x) {
  F v;
  for (int l = 0; l < kLanesOf<F>; ++l) v[l] = x;
  return v;
}
inline Float4 Load4(const float* p) { return Load<Float4>(p); }
inline void Store4(float* p, Float4 v) { Store(p, v); }
inline Float4 Splat4(float x) { return Float4{x, x, x, x}; }

// Lane by lane: mask (all ones or all zeros, as comparisons give) ? a : b.
template <typename F, typename I>
[[gnu::always_inline]] inline F Select(I mask, F a, F b) {
  return reinterpret_cast<F>((mask & reinterpret_cast<I>(a)) | (~mask & reinterpret_cast<I>(b)));
}
inline Float4 Select4(Int4 mask, Float4 a, Float4 b) { return Select(mask, a, b); }

// e^x within 1 ulp; 0 below -86.6 (where e^x < 2^-125, next to expf's subnormals), +inf
// above 88.72 (where expf overflows), NaN for NaN. F: FloatLanes<4>, <8> or <16>.
template <typename F>
[[gnu::always_inline]] inline F ExpLanes(F x) {
  using I = IntLanes<kLanesOf<F>>;
  constexpr float kLow = -86.6f, kHigh = 88.7228394f;  // e^kHigh: FLT_MAX.
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi exact in 9 bits.
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer.
  // A NaN fails both comparisons, stays NaN through the arithmetic and is returned.
  const I low = x<kLow, high = x> kHigh;
  const F clamped = Select(low, Splat<F>(kLow), Select(high, Splat<F>(kHigh), x));
  // x = n ln2 + r with |r| <= ln2 / 2 and -125 <= n <= 128; e^x = 2 e^r 2^(n-1).
  const F shifted = clamped * kLog2e + kRound;
  const F n = shifted - kRound;
  const F r = (clamped - n * kLn2Hi) - n * kLn2Lo;
  F p = Splat<F>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F e_r = p * r * r + r + 1.0f;
  // 2^(n-1) from n's bits: the low bits of `shifted` hold n.
  const I half_scale_bits = (reinterpret_cast<I>(shifted) - 0x4B400000 + 126) << 23;
  const F y = (e_r * 2.0f) * reinterpret_cast<F>(half_scale_bits);
  return Select(low, Splat<F>(0.0f),
                Select(high, Splat<F>(std::numeric_limits<float>::infinity()), y));
}
inline Float4 Exp(Float4 x) { return ExpLanes(x); }

// tanh(x) = 1 - 2 / (e^2x + 1): -1 and 1 at the ends, absolute error below 2e-7. F as
// ExpLanes's.
template <typename F>
[[gnu::always_inline]] inline F TanhLanes(F x) {
  return 1.0f - 2.0f / (ExpLanes(x + x) + 1.0f);
}
inline Float4 Tanh(Float4 x) { return TanhLanes(x); }

// One element: lane 0 of the vector function (for the tails of rows).
inline float Exp(float x) { return Exp(Splat4(x))[0]; }
inline float Tanh(float x) { return Tanh(Splat4(x))[0]; }

inline double Exp(double x) { return std::exp(x); }
inline double Tanh(double x) { return std::tanh(x); }

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_EXP_H_
