// A contiguous, row-major n-dimensional array with a dtype, on one device. A Tensor is a
// handle: copies share the same memory (like a shared_ptr), and so do views made with
// View/Reshape/Slice, which keep that memory alive. Wrap() makes a tensor over memory it
// does not own.
//
//   ASSIGN_OR_RETURN(Tensor x, Tensor::Empty({batch, 768}, DType::kF32));   // on the cpu
//   ASSIGN_OR_RETURN(Tensor row, x.Slice(3, 4));                             // shares x's memory
//   ASSIGN_OR_RETURN(float* p, x.data<float>());                             // dtype-checked
//   RETURN_IF_ERROR(CheckSameShape(x, y, "x", "y"));
//
// Accessors never cause undefined behaviour on a wrong dtype, shape or device: they return
// a Status naming what did not match. A Tensor may be read from several threads; writes to
// its elements need the caller's synchronisation.
#ifndef USINE_RUNTIME_CORE_TENSOR_H_
#define USINE_RUNTIME_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "runtime/core/allocator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/core/stream.h"

namespace usine {

class Tensor {
 public:
  // An undefined tensor (defined() is false): no shape, no memory.
  Tensor() = default;

  // Uninitialised memory from the device's default allocator (for CUDA, ordered on
  // `stream`, default: the device's default stream).
  [[nodiscard]] static absl::StatusOr<Tensor> Empty(Shape shape, DType dtype,
                                                    Device device = Device::Cpu(),
                                                    StreamHandle stream = nullptr);
  // Uninitialised memory from `allocator`, which must outlive the tensor.
  [[nodiscard]] static absl::StatusOr<Tensor> Empty(Shape shape, DType dtype, Allocator& allocator,
                                                    StreamHandle stream = nullptr);
  // A tensor over `data`, which the caller owns and keeps valid while the tensor (or any
  // view of it) is used. REQUIRES: data holds shape.numel() elements of dtype on device.
  [[nodiscard]] static absl::StatusOr<Tensor> Wrap(void* data, Shape shape, DType dtype,
                                                   Device device);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  // REQUIRES: 0 <= i < rank().
  int64_t dim(int i) const { return shape_.dim(i); }
  int64_t numel() const { return defined() ? shape_.numel() : 0; }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  Device device() const;
  // True when this tensor (or the tensor it views) allocated its memory; false for Wrap().
  bool owns_memory() const;
  // True when both tensors use the same allocation.
  bool SharesMemoryWith(const Tensor& other) const;
  // True when some byte of this tensor's elements is also one of `other`'s (same device).
  bool Overlaps(const Tensor& other) const;

  // Address of the first element (nullptr when empty or undefined).
  void* raw_data() const;
  // The first element as T*; an error unless T matches dtype().
  template <typename T>
  [[nodiscard]] absl::StatusOr<T*> data() const;
  // The elements as a span, for host code; an error unless T matches and the tensor is on the cpu.
  template <typename T>
  [[nodiscard]] absl::StatusOr<absl::Span<T>> host_span() const;

  // numel(shape) elements starting `element_offset` elements into this tensor.
  [[nodiscard]] absl::StatusOr<Tensor> View(int64_t element_offset, Shape shape) const;
  // The same elements with another shape of equal element count.
  [[nodiscard]] absl::StatusOr<Tensor> Reshape(Shape shape) const;
  // Rows [begin, end) along dimension 0. REQUIRES: rank() >= 1.
  [[nodiscard]] absl::StatusOr<Tensor> Slice(int64_t begin, int64_t end) const;

  // "f32[2, 3] on cpu", or "undefined".
  std::string DebugString() const;

 private:
  struct Storage;
  Tensor(std::shared_ptr<Storage> storage, size_t byte_offset, Shape shape, DType dtype)
      : storage_(std::move(storage)),
        byte_offset_(byte_offset),
        shape_(std::move(shape)),
        dtype_(dtype) {}
  [[nodiscard]] absl::Status CheckElementType(DType want) const;

  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::kF32;
};

// Argument checks for kernels and layers. Each returns InvalidArgument naming the argument
// (`what`) and both sides of the mismatch, or OK.
[[nodiscard]] absl::Status CheckDefined(const Tensor& t, absl::string_view what);
[[nodiscard]] absl::Status CheckDType(const Tensor& t, DType want, absl::string_view what);
[[nodiscard]] absl::Status CheckShape(const Tensor& t, const Shape& want, absl::string_view what);
[[nodiscard]] absl::Status CheckDevice(const Tensor& t, Device want, absl::string_view what);
[[nodiscard]] absl::Status CheckSameShape(const Tensor& a, const Tensor& b,
                                          absl::string_view a_name, absl::string_view b_name);
[[nodiscard]] absl::Status CheckSameDType(const Tensor& a, const Tensor& b,
                                          absl::string_view a_name, absl::string_view b_name);
[[nodiscard]] absl::Status CheckSameDevice(const Tensor& a, const Tensor& b,
                                           absl::string_view a_name, absl::string_view b_name);

template <typename T>
absl::StatusOr<T*> Tensor::data() const {
  if (absl::Status s = CheckElementType(kDTypeOf<std::remove_const_t<T>>); !s.ok()) return s;
  return static_cast<T*>(raw_data());
}

template <typename T>
absl::StatusOr<absl::Span<T>> Tensor::host_span() const {
  if (absl::Status s = CheckElementType(kDTypeOf<std::remove_const_t<T>>); !s.ok()) return s;
  if (!device().is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("host access to ", DebugString(), ": copy it to the cpu first"));
  }
  return absl::Span<T>(static_cast<T*>(raw_data()), static_cast<size_t>(numel()));
}

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_TENSOR_H_
