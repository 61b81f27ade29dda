#include "checkpoint/internal/tensor_crc.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/core/crc32c.h"

namespace usine::checkpoint_internal {
namespace {

// The bytes of the box at `offset` with `extent` of a row-major [d0, d1, d2] tensor.
std::vector<uint8_t> Box(const std::vector<uint8_t>& all, const Shape& g, size_t es,
                         std::vector<int64_t> offset, const Shape& extent) {
  std::vector<uint8_t> out;
  for (int64_t i = 0; i < extent.dim(0); ++i) {
    for (int64_t j = 0; j < extent.dim(1); ++j) {
      for (int64_t k = 0; k < extent.dim(2); ++k) {
        const int64_t e = ((offset[0] + i) * g.dim(1) + offset[1] + j) * g.dim(2) + offset[2] + k;
        out.insert(out.end(), all.begin() + e * es, all.begin() + (e + 1) * es);
      }
    }
  }
  return out;
}

TEST(TensorCrc, BoxesThatTileATensorGiveTheCrcOfItsBytes) {
  const Shape g{5, 6, 4};
  const size_t es = 2;
  std::vector<uint8_t> all(static_cast<size_t>(g.numel()) * es);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i * 131 + 7);
  const uint32_t want = Crc32c(absl::Span<const uint8_t>(all));
  TensorCrc crc(g, es);
  // Tilings: whole; split along each dimension; a 2 x 2 x 2 grid of uneven boxes.
  const std::vector<std::vector<std::pair<std::vector<int64_t>, Shape>>> tilings = {
      {{{0, 0, 0}, Shape{5, 6, 4}}},
      {{{0, 0, 0}, Shape{2, 6, 4}}, {{2, 0, 0}, Shape{3, 6, 4}}},
      {{{0, 0, 0}, Shape{5, 1, 4}}, {{0, 1, 0}, Shape{5, 5, 4}}},
      {{{0, 0, 0}, Shape{5, 6, 3}}, {{0, 0, 3}, Shape{5, 6, 1}}},
      {{{0, 0, 0}, Shape{2, 3, 1}},
       {{0, 0, 1}, Shape{2, 3, 3}},
       {{0, 3, 0}, Shape{2, 3, 1}},
       {{0, 3, 1}, Shape{2, 3, 3}},
       {{2, 0, 0}, Shape{3, 3, 1}},
       {{2, 0, 1}, Shape{3, 3, 3}},
       {{2, 3, 0}, Shape{3, 3, 1}},
       {{2, 3, 1}, Shape{3, 3, 3}}},
  };
  for (size_t t = 0; t < tilings.size(); ++t) {
    uint32_t terms = 0;
    for (const auto& [offset, extent] : tilings[t]) {
      const std::vector<uint8_t> bytes = Box(all, g, es, offset, extent);
      terms ^= crc.BoxTerm(bytes.data(), extent, offset);
    }
    EXPECT_EQ(crc.Finish(terms), want) << "tiling " << t;
  }
}

TEST(TensorCrc, EmptyAndScalarTensors) {
  EXPECT_EQ(TensorCrc(Shape{0, 3}, 4).Finish(0), Crc32c(absl::string_view()));
  const float x = 1.5f;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&x);
  TensorCrc scalar(Shape{}, 4);
  EXPECT_EQ(scalar.Finish(scalar.BoxTerm(bytes, Shape{}, {})),
            Crc32c(absl::Span<const uint8_t>(bytes, 4)));
}

}  // namespace
}  // namespace usine::checkpoint_internal
