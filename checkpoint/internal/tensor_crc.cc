#include "checkpoint/internal/tensor_crc.h"

#include <vector>

#include "runtime/core/crc32c.h"

namespace usine::checkpoint_internal {
namespace {

// The linear register of `data` (zero initial value, no final xor).
uint32_t LinearCrc(const uint8_t* data, size_t size) {
  return ~Crc32cExtend(0xffffffffu, absl::Span<const uint8_t>(data, size));
}

}  // namespace

uint32_t ShiftCrc(uint32_t v, uint64_t n) { return Crc32cMultiply(Crc32cZerosOperator(n), v); }

TensorCrc::TensorCrc(Shape global_shape, size_t element_size)
    : global_(std::move(global_shape)),
      element_size_(element_size),
      total_bytes_(static_cast<uint64_t>(global_.numel()) * element_size) {}

uint32_t TensorCrc::BoxTerm(const uint8_t* bytes, const Shape& box,
                            absl::Span<const int64_t> offset) const {
  const int rank = global_.rank();
  if (box.numel() == 0) return 0;
  // Runs: the box's innermost dimensions that span the whole tensor, plus the next one in.
  int inner = rank;  // Dimensions [inner, rank) are whole.
  while (inner > 0 && box.dim(inner - 1) == global_.dim(inner - 1)) --inner;
  const int split = inner > 0 ? inner - 1 : 0;  // The run spans box.dim(split) of [split, rank).
  uint64_t run_elements = 1;
  for (int d = split; d < rank; ++d) run_elements *= static_cast<uint64_t>(box.dim(d));
  const uint64_t run_bytes = run_elements * element_size_;
  // Global row-major strides, in elements.
  std::vector<uint64_t> stride(static_cast<size_t>(rank), 1);
  for (int d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * global_.dim(d + 1);

  std::vector<int64_t> index(static_cast<size_t>(split), 0);  // Over the box's outer dims.
  uint32_t acc = 0;
  uint64_t acc_end = 0;  // Byte position where the runs folded into acc end.
  uint64_t last_gap = 0;
  uint32_t last_power = Crc32cZerosOperator(0);
  const uint64_t runs = static_cast<uint64_t>(box.numel()) / run_elements;
  for (uint64_t r = 0; r < runs; ++r) {
    uint64_t start = 0;
    for (int d = 0; d < rank; ++d) {
      const int64_t i = d < split ? index[d] : 0;
      start += static_cast<uint64_t>(offset[d] + i) * stride[d];
    }
    start *= element_size_;
    const uint64_t end = start + run_bytes;
    const uint64_t gap = end - acc_end;
    if (gap != last_gap) {
      last_gap = gap;
      last_power = Crc32cZerosOperator(gap);
    }
    acc = Crc32cMultiply(last_power, acc) ^ LinearCrc(bytes + r * run_bytes, run_bytes);
    acc_end = end;
    for (int d = split - 1; d >= 0; --d) {  // Next outer index, last dimension fastest.
      if (++index[d] < box.dim(d)) break;
      index[d] = 0;
    }
  }
  return ShiftCrc(acc, total_bytes_ - acc_end);
}

uint32_t TensorCrc::Finish(uint32_t xor_of_terms) const {
  return ~(xor_of_terms ^ ShiftCrc(0xffffffffu, total_bytes_));
}

}  // namespace usine::checkpoint_internal
