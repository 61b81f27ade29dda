// Byte-pair encoding of one pre-tokenized piece, as bpe() in OpenAI's encoder.py does it:
// start from one symbol per byte and, while some adjacent pair has a merge, merge every
// occurrence (left to right) of the pair of lowest rank.
//
//   MergeTable merges;                       // from vocab.bpe, in rank order
//   merges.Add(id_of_t, id_of_h, id_of_th);  // rank 0
//   BpeScratch scratch;
//   EncodePiece("the", byte_ids, merges, &scratch, &ids);
//
// Here symbols are token ids, not strings, and the pairs wait in a heap ordered by (rank,
// position) with stale entries skipped; this does the same merges as encoder.py as long as
// every merge's parts are bytes or results of earlier merges (then a merge only creates
// pairs of higher rank), which Gpt2Tokenizer::Load checks. It costs O(n log n) for a piece of
// n bytes, where encoder.py's rescan costs O(n^2).
#ifndef USINE_RUNTIME_DATA_INTERNAL_BPE_H_
#define USINE_RUNTIME_DATA_INTERNAL_BPE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace usine::data_internal {

struct Merge {
  int32_t rank;
  int32_t merged_id;
};

class MergeTable {
 public:
  // Adds the merge of the pair (left, right) into merged_id, ranked after all those before
  // it. Returns false, changing nothing, when the pair already has a merge.
  bool Add(int32_t left, int32_t right, int32_t merged_id);

  // The merge of the pair, or nullptr.
  const Merge* Find(int32_t left, int32_t right) const {
    auto it = merges_.find(Key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }

  int32_t size() const { return static_cast<int32_t>(merges_.size()); }

 private:
  static uint64_t Key(int32_t left, int32_t right) {
    return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
  }

  absl::flat_hash_map<uint64_t, Merge> merges_;
};

// Working memory for EncodePiece, kept across the pieces of one text so that encoding
// allocates nothing per piece once it has grown. One per thread.
struct BpeScratch {
  struct Candidate {
    int32_t rank;
    int32_t left_id;
    int32_t right_id;
    int32_t merged_id;
    size_t left;  // the left symbol's start in the piece
  };
  std::vector<int32_t> symbol_ids;  // by start position; -1 where no symbol starts
  std::vector<size_t> next;         // start of the following symbol, or the piece's size
  std::vector<size_t> prev;         // start of the preceding symbol, or SIZE_MAX
  std::vector<Candidate> heap;
};

// Appends the token ids of `piece` to *ids. byte_ids[b] is the token of the single byte b.
void EncodePiece(absl::string_view piece, const std::array<int32_t, 256>& byte_ids,
                 const MergeTable& merges, BpeScratch* scratch, std::vector<int32_t>* ids);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_BPE_H_
