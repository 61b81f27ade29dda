// cpu random fills: each Philox block is computed once and its four lanes used in turn.
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"
#include "runtime/kernels/internal/philox.h"

namespace usine::kernels_internal::cpu {
namespace {

template <typename LaneFn>
void FillFromBlocks(const Tensor& t, uint64_t seed, uint64_t offset, LaneFn lane_value) {
  VisitFloatType(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(t.raw_data());
    const uint64_t n = static_cast<uint64_t>(t.numel());
    uint64_t i = 0;
    while (i < n) {
      const uint64_t index = offset + i;
      const Philox4 block = PhiloxBlock(seed, index / 4);
      for (int lane = static_cast<int>(index % 4); lane < 4 && i < n; ++lane, ++i) {
        out[i] = FromFloat<T>(lane_value(block, lane));
      }
    }
  });
}

}  // namespace

void RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high) {
  FillFromBlocks(t, seed, offset, [&](const Philox4& block, int lane) {
    return UniformFromBlock(block, lane, low, high);
  });
}

void RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev) {
  FillFromBlocks(t, seed, offset, [&](const Philox4& block, int lane) {
    return NormalFromBlock(block, lane, mean, stddev);
  });
}

}  // namespace usine::kernels_internal::cpu
