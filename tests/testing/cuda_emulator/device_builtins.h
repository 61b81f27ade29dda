// CUDA's built-in variables and device functions as the emulator provides them to kernels
// compiled as host C++ (force-included through cuda_emulator_prelude.h). Barriers and warp
// primitives suspend the calling emulated thread until the block or the warp meets them; every
// lane of a warp must reach the same warp primitive from the same call site (else a fatal
// error), with the full mask. Add to it what another emulated file needs.
//
//   const int lane = static_cast<int>(threadIdx.x) % 32;
//   v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 16));
//   __syncthreads();
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_DEVICE_BUILTINS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_DEVICE_BUILTINS_H_

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator {

// What threadIdx, blockIdx, blockDim and gridDim read: the running emulated thread's, set by the
// block scheduler as it switches threads.
struct ThreadCoordinates {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern ThreadCoordinates running_thread;

// The warp primitives behind the builtins below (warp_rendezvous.cc, block_barrier.cc).
void SyncThreads();
void SyncWarp(unsigned mask);
uint64_t ShuffleXor(unsigned mask, uint64_t bits, int lane_mask, int width);
// The shared-window address of a generic pointer into the block's dynamic shared memory.
size_t SharedWindowAddress(const void* p);

}  // namespace usine::testing::cuda_emulator

#define threadIdx (::usine::testing::cuda_emulator::running_thread.thread_idx)
#define blockIdx (::usine::testing::cuda_emulator::running_thread.block_idx)
#define blockDim (::usine::testing::cuda_emulator::running_thread.block_dim)
#define gridDim (::usine::testing::cuda_emulator::running_thread.grid_dim)

inline void __syncthreads() { ::usine::testing::cuda_emulator::SyncThreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::usine::testing::cuda_emulator::SyncWarp(mask);
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = ::usine::testing::cuda_emulator::ShuffleXor(mask, bits, lane_mask, width);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

inline size_t __cvta_generic_to_shared(const void* p) {
  return ::usine::testing::cuda_emulator::SharedWindowAddress(p);
}

// The host's IEEE operations round to nearest; emulated targets are built with
// -ffp-contract=off, so no product and sum are fused behind these.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }  // Correctly rounded, as on CUDA.
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }  // Correctly rounded, as on CUDA.
inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_DEVICE_BUILTINS_H_
