#include "runtime/nn/token_draw.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace usine {
namespace {

// A uniform variate in [0, 1) from the engine's top 53 bits.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// The ids of the top_k largest logits, in increasing id order (so that the draw does not
// depend on the order std::nth_element leaves them in). REQUIRES: 0 < top_k < logits.size().
std::vector<int32_t> TopK(absl::Span<const double> logits, int64_t top_k) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::nth_element(ids.begin(), ids.begin() + (top_k - 1), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  ids.resize(static_cast<size_t>(top_k));
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

absl::StatusOr<int32_t> DrawToken(absl::Span<const double> logits, double temperature,
                                  int64_t top_k, std::mt19937_64& rng) {
  const auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("DrawToken: ", parts...));
  };
  const int64_t n = static_cast<int64_t>(logits.size());
  if (n == 0) return bad("no logits");
  if (n > std::numeric_limits<int32_t>::max()) return bad(n, " logits, more than int32 ids");
  if (!std::isfinite(temperature) || temperature < 0) {
    return bad("temperature ", temperature, " (expected a finite value >= 0)");
  }
  if (top_k < 0) return bad("top_k ", top_k, " (expected >= 0; 0: every id)");
  int32_t best = 0;
  for (int32_t i = 0; i < n; ++i) {
    if (!std::isfinite(logits[i])) return bad("the logit of id ", i, " is ", logits[i]);
    if (logits[i] > logits[best]) best = i;
  }
  if (temperature == 0 || top_k == 1) return best;

  std::vector<int32_t> candidates;
  if (top_k > 0 && top_k < n) candidates = TopK(logits, top_k);
  const int64_t count = candidates.empty() ? n : top_k;
  const auto id = [&](int64_t k) {
    return candidates.empty() ? static_cast<int32_t>(k) : candidates[k];
  };
  // Weights relative to the largest logit, whose weight is 1: no overflow, a sum >= 1.
  std::vector<double> cumulative(static_cast<size_t>(count));
  double total = 0;
  int64_t last_positive = 0;
  for (int64_t k = 0; k < count; ++k) {
    const double weight = std::exp((logits[id(k)] - logits[best]) / temperature);
    if (weight > 0) last_positive = k;
    total += weight;
    cumulative[k] = total;
  }
  const double u = Uniform01(rng) * total;
  const int64_t k = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
  // u < total but for rounding; then the last candidate that can be drawn.
  return id(std::min(k, last_positive));
}

}  // namespace usine
