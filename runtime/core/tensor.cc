#include "runtime/core/tensor.h"

#include <utility>

#include "runtime/core/status_macros.h"

namespace usine {

struct Tensor::Storage {
  Storage(void* data, size_t nbytes, Device device, Allocator* allocator)
      : data(data), nbytes(nbytes), device(device), allocator(allocator) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (allocator != nullptr) allocator->Deallocate(data);
  }

  void* const data;
  const size_t nbytes;
  const Device device;
  Allocator* const allocator;  // nullptr: memory owned by someone else (Wrap).
};

absl::StatusOr<Tensor> Tensor::Empty(Shape shape, DType dtype, Device device, StreamHandle stream) {
  ASSIGN_OR_RETURN(Allocator * allocator, DefaultAllocator(device));
  return Empty(std::move(shape), dtype, *allocator, stream);
}

absl::StatusOr<Tensor> Tensor::Empty(Shape shape, DType dtype, Allocator& allocator,
                                     StreamHandle stream) {
  RETURN_IF_ERROR(shape.Validate());
  const size_t nbytes = static_cast<size_t>(shape.numel()) * DTypeSize(dtype);
  ASSIGN_OR_RETURN(void* data, allocator.Allocate(nbytes, stream));
  auto storage = std::make_shared<Storage>(data, nbytes, allocator.device(), &allocator);
  return Tensor(std::move(storage), 0, std::move(shape), dtype);
}

absl::StatusOr<Tensor> Tensor::Wrap(void* data, Shape shape, DType dtype, Device device) {
  RETURN_IF_ERROR(shape.Validate());
  const size_t nbytes = static_cast<size_t>(shape.numel()) * DTypeSize(dtype);
  if (data == nullptr && nbytes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Wrap: null data for ", DTypeName(dtype), shape.ToString()));
  }
  auto storage = std::make_shared<Storage>(data, nbytes, device, nullptr);
  return Tensor(std::move(storage), 0, std::move(shape), dtype);
}

Device Tensor::device() const { return defined() ? storage_->device : Device::Cpu(); }

bool Tensor::owns_memory() const { return defined() && storage_->allocator != nullptr; }

bool Tensor::SharesMemoryWith(const Tensor& other) const {
  return defined() && storage_ == other.storage_;
}

bool Tensor::Overlaps(const Tensor& other) const {
  if (numel() == 0 || other.numel() == 0 || device() != other.device()) return false;
  const char* a = static_cast<const char*>(raw_data());
  const char* b = static_cast<const char*>(other.raw_data());
  return a < b + other.nbytes() && b < a + nbytes();
}

void* Tensor::raw_data() const {
  if (!defined() || storage_->data == nullptr || numel() == 0) return nullptr;
  return static_cast<char*>(storage_->data) + byte_offset_;
}

absl::Status Tensor::CheckElementType(DType want) const {
  RETURN_IF_ERROR(CheckDefined(*this, "tensor"));
  if (dtype_ != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("element access as ", DTypeName(want), " to a tensor of ", DebugString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Tensor::View(int64_t element_offset, Shape shape) const {
  RETURN_IF_ERROR(CheckDefined(*this, "tensor"));
  RETURN_IF_ERROR(shape.Validate());
  if (element_offset < 0 || element_offset > numel() || shape.numel() > numel() - element_offset) {
    return absl::OutOfRangeError(absl::StrCat("view of ", shape.numel(), " elements at offset ",
                                              element_offset, " outside ", DebugString()));
  }
  return Tensor(storage_, byte_offset_ + static_cast<size_t>(element_offset) * DTypeSize(dtype_),
                std::move(shape), dtype_);
}

absl::StatusOr<Tensor> Tensor::Reshape(Shape shape) const {
  RETURN_IF_ERROR(CheckDefined(*this, "tensor"));
  RETURN_IF_ERROR(shape.Validate());
  if (shape.numel() != numel()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", DebugString(), " to ",
                                                   shape.ToString(), ": element counts differ"));
  }
  return Tensor(storage_, byte_offset_, std::move(shape), dtype_);
}

absl::StatusOr<Tensor> Tensor::Slice(int64_t begin, int64_t end) const {
  RETURN_IF_ERROR(CheckDefined(*this, "tensor"));
  if (rank() < 1) return absl::InvalidArgumentError("Slice of a rank-0 tensor");
  if (begin < 0 || end < begin || end > dim(0)) {
    return absl::OutOfRangeError(
        absl::StrCat("slice [", begin, ", ", end, ") of dimension 0 of ", DebugString()));
  }
  std::vector<int64_t> dims(shape_.dims().begin(), shape_.dims().end());
  const int64_t row = dims[0] == 0 ? 0 : numel() / dims[0];
  dims[0] = end - begin;
  return View(begin * row, Shape(absl::MakeConstSpan(dims)));
}

std::string Tensor::DebugString() const {
  if (!defined()) return "undefined";
  return absl::StrCat(DTypeName(dtype_), shape_.ToString(), " on ", device().ToString());
}

absl::Status CheckDefined(const Tensor& t, absl::string_view what) {
  if (t.defined()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " is an undefined tensor"));
}

absl::Status CheckDType(const Tensor& t, DType want, absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(t, what));
  if (t.dtype() == want) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected dtype ", DTypeName(want), ", got ", t.DebugString()));
}

absl::Status CheckShape(const Tensor& t, const Shape& want, absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(t, what));
  if (t.shape() == want) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected shape ", want.ToString(), ", got ", t.DebugString()));
}

absl::Status CheckDevice(const Tensor& t, Device want, absl::string_view what) {
  RETURN_IF_ERROR(CheckDefined(t, what));
  if (t.device() == want) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected a tensor on ", want.ToString(), ", got ", t.DebugString()));
}

absl::Status CheckSameShape(const Tensor& a, const Tensor& b, absl::string_view a_name,
                            absl::string_view b_name) {
  RETURN_IF_ERROR(CheckDefined(a, a_name));
  RETURN_IF_ERROR(CheckDefined(b, b_name));
  if (a.shape() == b.shape()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "shape mismatch: ", a_name, " is ", a.DebugString(), ", ", b_name, " is ", b.DebugString()));
}

absl::Status CheckSameDType(const Tensor& a, const Tensor& b, absl::string_view a_name,
                            absl::string_view b_name) {
  RETURN_IF_ERROR(CheckDefined(a, a_name));
  RETURN_IF_ERROR(CheckDefined(b, b_name));
  if (a.dtype() == b.dtype()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "dtype mismatch: ", a_name, " is ", a.DebugString(), ", ", b_name, " is ", b.DebugString()));
}

absl::Status CheckSameDevice(const Tensor& a, const Tensor& b, absl::string_view a_name,
                             absl::string_view b_name) {
  RETURN_IF_ERROR(CheckDefined(a, a_name));
  RETURN_IF_ERROR(CheckDefined(b, b_name));
  if (a.device() == b.device()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "device mismatch: ", a_name, " is ", a.DebugString(), ", ", b_name, " is ", b.DebugString()));
}

}  // namespace usine
