// cpu reductions: f64 partial sums over fixed blocks of 1024 elements, combined pairwise,
// so the order (and result) does not depend on how the blocks are later spread on threads.
#include <vector>

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

template <bool kSquares>
float Reduce(const Tensor& x) {
  return VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = static_cast<const T*>(x.raw_data());
    const int64_t n = x.numel();
    std::vector<double> partials((n + kBlock - 1) / kBlock);
    for (size_t b = 0; b < partials.size(); ++b) {
      double acc = 0.0;
      const int64_t end = std::min<int64_t>(n, (static_cast<int64_t>(b) + 1) * kBlock);
      for (int64_t i = static_cast<int64_t>(b) * kBlock; i < end; ++i) {
        const double v = ToFloat(p[i]);
        acc += kSquares ? v * v : v;
      }
      partials[b] = acc;
    }
    return static_cast<float>(PairwiseSum(partials));
  });
}

}  // namespace

float Sum(const Tensor& x) { return Reduce<false>(x); }

float SumOfSquares(const Tensor& x) { return Reduce<true>(x); }

}  // namespace usine::kernels_internal::cpu
