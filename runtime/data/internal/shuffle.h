// Seeded, platform-independent shuffles for DataStream: the same seed gives the same order
// on every machine and compiler (no std::uniform_int_distribution, whose output the standard
// leaves open).
//
//   uint64_t key = MixKey(seed, epoch, shard);
//   std::vector<uint32_t> order = Permutation(n, key);  // a uniform permutation of [0, n)
#ifndef USINE_RUNTIME_DATA_INTERNAL_SHUFFLE_H_
#define USINE_RUNTIME_DATA_INTERNAL_SHUFFLE_H_

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "absl/strings/string_view.h"

namespace usine::data_internal {

// One key from several values, each step a SplitMix64 finalisation; order matters.
uint64_t MixKey(std::initializer_list<uint64_t> values);

// A 64-bit hash of bytes (FNV-1a, then finalised), for keys derived from names.
uint64_t HashBytes(absl::string_view bytes);

// A Fisher-Yates permutation of [0, n) drawn from a SplitMix64 stream seeded with `key`,
// with unbiased bounded draws. REQUIRES: n < 2^32.
std::vector<uint32_t> Permutation(uint64_t n, uint64_t key);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_SHUFFLE_H_
