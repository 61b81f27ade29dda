// The CRC-32C of a whole logical tensor (its bytes in row-major order), assembled from the
// boxes that different ranks hold, without moving the bytes.
//
//   TensorCrc crc(global_shape, element_size);
//   uint32_t mine = crc.BoxTerm(piece_bytes, piece_shape, offset);   // on each rank
//   uint32_t whole = crc.Finish(xor_of_every_distinct_box_term);      // == Crc32c(all bytes)
//
// Why it works: with a zero initial value and no final xor, a CRC is linear over GF(2), so
// the CRC of the tensor is the xor, over its contiguous runs, of each run's CRC shifted by
// the number of bytes after it (a multiplication by x^(8n) mod P); the standard initial
// value and final xor are applied once, in Finish. The boxes must tile the tensor; a box's
// term does not depend on which rank computes it.
// Thread-safety: a TensorCrc is immutable after construction; methods are thread-safe.
#ifndef USINE_CHECKPOINT_INTERNAL_TENSOR_CRC_H_
#define USINE_CHECKPOINT_INTERNAL_TENSOR_CRC_H_

#include <cstdint>

#include "absl/types/span.h"

#include "runtime/core/shape.h"

namespace usine::checkpoint_internal {

// The linear CRC-32C register of `v` after `n` more zero bytes.
uint32_t ShiftCrc(uint32_t v, uint64_t n);

class TensorCrc {
 public:
  TensorCrc(Shape global_shape, size_t element_size);

  // The term of the box at `offset` with `box` extents, whose elements are `bytes`
  // (row-major, contiguous). REQUIRES: the box lies inside the global shape.
  uint32_t BoxTerm(const uint8_t* bytes, const Shape& box, absl::Span<const int64_t> offset) const;

  // The tensor's CRC-32C from the xor of the terms of boxes that tile it.
  uint32_t Finish(uint32_t xor_of_terms) const;

 private:
  Shape global_;
  size_t element_size_;
  uint64_t total_bytes_;
};

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_TENSOR_CRC_H_
