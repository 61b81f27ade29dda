// Counter-based random numbers (Philox4x32-10): element i of the output is a pure function
// of (seed, offset + i), so the values do not depend on the device, the thread count or how
// a tensor is split: the cpu and CUDA give the same bits for the same seed and offset, and
// filling [0, n) at offset 0 equals filling [0, k) at offset 0 and [k, n) at offset k.
// Execution contract: kernels.h. The output is f32, bf16 or f16 (drawn in f32, then rounded).
//
//   RETURN_IF_ERROR(RandomNormal(w, seed, /*offset=*/0, 0.0f, 0.02f));
//   RETURN_IF_ERROR(RandomUniform(mask, seed, step * mask.numel(), 0.0f, 1.0f, stream));
#ifndef USINE_RUNTIME_KERNELS_RANDOM_H_
#define USINE_RUNTIME_KERNELS_RANDOM_H_

#include <cstdint>

#include "absl/status/status.h"

#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

// Uniform on [low, high).
[[nodiscard]] absl::Status RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset,
                                         float low = 0.0f, float high = 1.0f,
                                         const Stream& stream = Stream::Host());

// Normal with the given mean and standard deviation (Box-Muller).
[[nodiscard]] absl::Status RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset,
                                        float mean = 0.0f, float stddev = 1.0f,
                                        const Stream& stream = Stream::Host());

}  // namespace usine

#endif  // USINE_RUNTIME_KERNELS_RANDOM_H_
