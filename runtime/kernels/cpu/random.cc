// cpu random fills: each Philox block is computed once and its four lanes used in turn, over
// the cores (ParallelFor): an element depends on its index alone, so the cut changes nothing.
#include <array>

#include "runtime/core/parallel_for.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"
#include "runtime/kernels/internal/philox.h"

namespace usine::kernels_internal::cpu {
namespace {

// Elements per range of the loop: a normal draw costs tens of nanoseconds.
constexpr int64_t kGrain = 16384;

// Fills `t` with element i = lane (offset + i) % 4 of block_values(PhiloxBlock(seed,
// (offset + i) / 4)).
template <typename BlockFn>
void FillFromBlocks(const Tensor& t, uint64_t seed, uint64_t offset, BlockFn block_values) {
  VisitFloatType(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(t.raw_data());
    ParallelFor(t.numel(), kGrain, [&](int64_t begin, int64_t end) {
      uint64_t i = static_cast<uint64_t>(begin);
      while (i < static_cast<uint64_t>(end)) {
        const uint64_t index = offset + i;
        const std::array<float, 4> values = block_values(PhiloxBlock(seed, index / 4));
        for (int lane = static_cast<int>(index % 4); lane < 4 && i < static_cast<uint64_t>(end);
             ++lane, ++i) {
          out[i] = FromFloat<T>(values[lane]);
        }
      }
    });
  });
}

}  // namespace

void RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high) {
  FillFromBlocks(t, seed, offset, [&](const Philox4& block) {
    return std::array<float, 4>{
        UniformFromBlock(block, 0, low, high), UniformFromBlock(block, 1, low, high),
        UniformFromBlock(block, 2, low, high), UniformFromBlock(block, 3, low, high)};
  });
}

void RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev) {
  FillFromBlocks(t, seed, offset, [&](const Philox4& block) {
    std::array<float, 4> values;
    NormalPairFromBlock(block, 0, mean, stddev, &values[0], &values[1]);
    NormalPairFromBlock(block, 1, mean, stddev, &values[2], &values[3]);
    return values;
  });
}

}  // namespace usine::kernels_internal::cpu
