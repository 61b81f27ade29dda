// cpu reductions: f64 partial sums over fixed blocks of 1024 elements, combined pairwise,
// so the order (and result) does not depend on how the blocks are spread on ParallelFor's
// threads.
#include <algorithm>
#include <vector>

#include "runtime/core/parallel_for.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"

namespace usine::kernels_internal::cpu {
namespace {

constexpr int64_t kBlock = 1024;

double PairwiseSum(std::vector<double>& partials) {
  if (partials.empty()) return 0.0;
  for (size_t width = 1; width < partials.size(); width *= 2) {
    for (size_t i = 0; i + width < partials.size(); i += 2 * width) {
      partials[i] += partials[i + width];
    }
  }
  return partials[0];
}

// The sum (of squares) of x[begin, end) in four interleaved f64 accumulators (four
// additions in flight instead of one chain), combined in a fixed order.
template <bool kSquares, typename T>
double BlockSum(const T* x, int64_t begin, int64_t end) {
  double acc[4] = {0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 4 <= end; i += 4) {
    for (int l = 0; l < 4; ++l) {
      const double v = ToFloat(x[i + l]);
      acc[l] += kSquares ? v * v : v;
    }
  }
  for (; i < end; ++i) {
    const double v = ToFloat(x[i]);
    acc[0] += kSquares ? v * v : v;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <bool kSquares>
float Reduce(const Tensor& x) {
  return VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = static_cast<const T*>(x.raw_data());
    const int64_t n = x.numel();
    std::vector<double> partials((n + kBlock - 1) / kBlock);
    const int64_t blocks = static_cast<int64_t>(partials.size());
    ParallelFor(blocks, /*grain=*/16, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        partials[b] = BlockSum<kSquares>(p, b * kBlock, std::min(n, (b + 1) * kBlock));
      }
    });
    return static_cast<float>(PairwiseSum(partials));
  });
}

}  // namespace

float Sum(const Tensor& x) { return Reduce<false>(x); }

float SumOfSquares(const Tensor& x) { return Reduce<true>(x); }

}  // namespace usine::kernels_internal::cpu
