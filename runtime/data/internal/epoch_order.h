// The order in which DataStream visits a fixed dataset, epoch after epoch: a pure function of
// (seed, epoch, the shards' sample counts), so that any process can compute the sample at any
// position. An epoch visits the shards in a shuffled order and, inside each shard, its
// samples in a shuffled order (or both in file order when shuffling is off); every sample of
// every shard exactly once.
//
//   EpochOrder order({1000, 980}, /*seed=*/1337, /*shuffle=*/true);
//   SampleRef ref = order.At(/*epoch=*/2, /*index=*/17);  // shard ref.shard, sample ref.sample
//
// Not thread-safe: At() caches the permutations it last used (the shard order of one epoch and
// the sample order of two shards), since consecutive positions mostly fall in one shard.
#ifndef USINE_RUNTIME_DATA_INTERNAL_EPOCH_ORDER_H_
#define USINE_RUNTIME_DATA_INTERNAL_EPOCH_ORDER_H_

#include <array>
#include <cstdint>
#include <vector>

namespace usine::data_internal {

struct SampleRef {
  int shard = 0;       // index into the counts given to EpochOrder
  int64_t sample = 0;  // index within that shard
};

class EpochOrder {
 public:
  // REQUIRES: every count < 2^32.
  EpochOrder(std::vector<int64_t> samples_per_shard, uint64_t seed, bool shuffle);

  int64_t samples_per_epoch() const { return total_; }
  // REQUIRES: epoch >= 0, 0 <= index < samples_per_epoch().
  SampleRef At(int64_t epoch, int64_t index);

 private:
  struct ShardSamples {
    int64_t epoch = -1;
    int shard = -1;
    std::vector<uint32_t> order;
  };
  void LayOutEpoch(int64_t epoch);
  const std::vector<uint32_t>& SampleOrder(int64_t epoch, int shard);

  std::vector<int64_t> counts_;
  uint64_t seed_;
  bool shuffle_;
  int64_t total_ = 0;

  int64_t laid_out_epoch_ = -1;
  std::vector<uint32_t> shard_order_;  // the epoch's shards, in visiting order
  std::vector<int64_t> ends_;          // ends_[i]: samples in shard_order_[0..i]
  std::array<ShardSamples, 2> cache_;  // the two most recent; cache_[0] the newest
};

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_EPOCH_ORDER_H_
