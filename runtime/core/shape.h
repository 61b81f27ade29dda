// The dimensions of a contiguous, row-major tensor.
//
//   Shape s{4, 1024, 768};
//   s.rank();     // 3
//   s.numel();    // 3145728
//   s.ToString(); // "[4, 1024, 768]"
//   RETURN_IF_ERROR(s.Validate());  // negative dims or an element count over 2^62 fail
#ifndef USINE_RUNTIME_CORE_SHAPE_H_
#define USINE_RUNTIME_CORE_SHAPE_H_

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace usine {

// A value type; cheap to copy for the ranks that models use (up to 6 inline).
class Shape {
 public:
  Shape() = default;  // Rank 0: a scalar with one element.
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(absl::Span<const int64_t> dims) : dims_(dims.begin(), dims.end()) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  // REQUIRES: 0 <= i < rank().
  int64_t dim(int i) const { return dims_[i]; }
  absl::Span<const int64_t> dims() const { return dims_; }

  // Product of the dimensions (1 for rank 0). Meaningful once Validate() has passed.
  int64_t numel() const;

  // OK when every dimension is >= 0 and the element count fits in 2^62.
  [[nodiscard]] absl::Status Validate() const;

  std::string ToString() const;

  friend bool operator==(const Shape& a, const Shape& b) { return a.dims_ == b.dims_; }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.ToString(); }

 private:
  absl::InlinedVector<int64_t, 6> dims_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_SHAPE_H_
