#include "runtime/data/internal/bpe.h"

#include <algorithm>
#include <limits>

namespace usine::data_internal {
namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// std::push_heap keeps the greatest on top; the candidate to merge first is the least.
bool MergesLater(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
}

void PushCandidate(const MergeTable& merges, BpeScratch* s, size_t left, size_t right) {
  const Merge* merge = merges.Find(s->symbol_ids[left], s->symbol_ids[right]);
  if (merge == nullptr) return;
  s->heap.push_back(
      {merge->rank, s->symbol_ids[left], s->symbol_ids[right], merge->merged_id, left});
  std::push_heap(s->heap.begin(), s->heap.end(), MergesLater);
}

}  // namespace

bool MergeTable::Add(int32_t left, int32_t right, int32_t merged_id) {
  return merges_.try_emplace(Key(left, right), Merge{size(), merged_id}).second;
}

void EncodePiece(absl::string_view piece, const std::array<int32_t, 256>& byte_ids,
                 const MergeTable& merges, BpeScratch* scratch, std::vector<int32_t>* ids) {
  const size_t n = piece.size();
  if (n == 1) {
    ids->push_back(byte_ids[static_cast<uint8_t>(piece[0])]);
    return;
  }
  BpeScratch& s = *scratch;
  s.symbol_ids.resize(n);
  s.next.resize(n);
  s.prev.resize(n);
  s.heap.clear();
  for (size_t i = 0; i < n; ++i) {
    s.symbol_ids[i] = byte_ids[static_cast<uint8_t>(piece[i])];
    s.next[i] = i + 1;
    s.prev[i] = i == 0 ? kNone : i - 1;
  }
  for (size_t i = 0; i + 1 < n; ++i) PushCandidate(merges, &s, i, i + 1);

  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), MergesLater);
    const BpeScratch::Candidate c = s.heap.back();
    s.heap.pop_back();
    // A symbol's id fixes its length, so equal ids mean the pair is still as it was pushed.
    const size_t left = c.left;
    const size_t right = s.next[left];
    if (s.symbol_ids[left] != c.left_id || right == n || s.symbol_ids[right] != c.right_id) {
      continue;
    }
    s.symbol_ids[left] = c.merged_id;
    s.symbol_ids[right] = -1;
    s.next[left] = s.next[right];
    if (s.next[left] != n) s.prev[s.next[left]] = left;
    if (s.prev[left] != kNone) PushCandidate(merges, &s, s.prev[left], left);
    if (s.next[left] != n) PushCandidate(merges, &s, left, s.next[left]);
  }
  for (size_t i = 0; i != n; i = s.next[i]) ids->push_back(s.symbol_ids[i]);
}

}  // namespace usine::data_internal
