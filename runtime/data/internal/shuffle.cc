#include "runtime/data/internal/shuffle.h"

#include <numeric>

namespace usine::data_internal {
namespace {

uint64_t Finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Finalize(state_ += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, bound) by rejection (Lemire's multiply-shift). REQUIRES: bound > 0.
  uint64_t Below(uint64_t bound) {
    const uint64_t threshold = -bound % bound;
    while (true) {
      const unsigned __int128 product = static_cast<unsigned __int128>(Next()) * bound;
      if (static_cast<uint64_t>(product) >= threshold) return static_cast<uint64_t>(product >> 64);
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

uint64_t MixKey(std::initializer_list<uint64_t> values) {
  uint64_t key = 0x6A09E667F3BCC908ULL;
  for (uint64_t v : values) key = Finalize(key ^ Finalize(v + 0x9E3779B97F4A7C15ULL));
  return key;
}

uint64_t HashBytes(absl::string_view bytes) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001B3ULL;
  return Finalize(h);
}

std::vector<uint32_t> Permutation(uint64_t n, uint64_t key) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  SplitMix64 rng(key);
  for (uint64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  return order;
}

}  // namespace usine::data_internal
