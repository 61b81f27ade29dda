#include "runtime/data/internal/epoch_order.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "runtime/data/internal/shuffle.h"

namespace usine::data_internal {
namespace {

// Distinguishes the shard-order stream from the per-shard sample streams in MixKey.
constexpr uint64_t kShardOrderStream = ~uint64_t{0};

}  // namespace

EpochOrder::EpochOrder(std::vector<int64_t> samples_per_shard, uint64_t seed, bool shuffle)
    : counts_(std::move(samples_per_shard)),
      seed_(seed),
      shuffle_(shuffle),
      total_(std::accumulate(counts_.begin(), counts_.end(), int64_t{0})) {}

void EpochOrder::LayOutEpoch(int64_t epoch) {
  if (shuffle_) {
    shard_order_ = Permutation(counts_.size(),
                               MixKey({seed_, static_cast<uint64_t>(epoch), kShardOrderStream}));
  } else {
    shard_order_.resize(counts_.size());
    std::iota(shard_order_.begin(), shard_order_.end(), 0u);
  }
  ends_.resize(counts_.size());
  int64_t end = 0;
  for (size_t i = 0; i < shard_order_.size(); ++i) ends_[i] = end += counts_[shard_order_[i]];
  laid_out_epoch_ = epoch;
}

const std::vector<uint32_t>& EpochOrder::SampleOrder(int64_t epoch, int shard) {
  if (cache_[1].epoch == epoch && cache_[1].shard == shard) std::swap(cache_[0], cache_[1]);
  if (cache_[0].epoch != epoch || cache_[0].shard != shard) {
    std::swap(cache_[0], cache_[1]);
    cache_[0].epoch = epoch;
    cache_[0].shard = shard;
    cache_[0].order =
        Permutation(counts_[shard],
                    MixKey({seed_, static_cast<uint64_t>(epoch), static_cast<uint64_t>(shard)}));
  }
  return cache_[0].order;
}

SampleRef EpochOrder::At(int64_t epoch, int64_t index) {
  if (epoch != laid_out_epoch_) LayOutEpoch(epoch);
  // The first shard whose end lies beyond index (empty shards have end == previous end).
  const size_t i = std::upper_bound(ends_.begin(), ends_.end(), index) - ends_.begin();
  const int shard = static_cast<int>(shard_order_[i]);
  const int64_t within = index - (ends_[i] - counts_[shard]);
  if (!shuffle_) return {shard, within};
  return {shard, SampleOrder(epoch, shard)[within]};
}

}  // namespace usine::data_internal
