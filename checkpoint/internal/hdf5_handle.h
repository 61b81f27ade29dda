// An owned HDF5 identifier (file, group, dataset, dataspace, datatype, property list,
// attribute), closed by the destructor with the function it was made with.
//
//   ASSIGN_OR_RETURN(H5Handle file, H5Handle::Own(USINE_HDF5_ID(H5Fopen(...)), H5Fclose));
//   H5Dopen2(file.id(), ...);
//
// Only for the thread that makes every HDF5 call of the process (HDF5 1.10 as Debian builds
// it is not thread-safe). Movable, not copyable.
#ifndef USINE_CHECKPOINT_INTERNAL_HDF5_HANDLE_H_
#define USINE_CHECKPOINT_INTERNAL_HDF5_HANDLE_H_

#include <utility>

#include <hdf5.h>

#include "absl/status/statusor.h"

namespace usine::checkpoint_internal {

class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);

  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  [[nodiscard]] static absl::StatusOr<H5Handle> Own(absl::StatusOr<hid_t> id, Closer closer) {
    if (!id.ok()) return id.status();
    return H5Handle(*id, closer);
  }
  H5Handle(H5Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  H5Handle& operator=(H5Handle&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() { Reset(); }

  hid_t id() const { return id_; }

  // Closes now; returns the closer's result (negative on failure, e.g. a failed flush).
  herr_t Close() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_ != nullptr) rc = closer_(id_);
    id_ = H5I_INVALID_HID;
    return rc;
  }

 private:
  void Reset() {
    if (id_ >= 0 && closer_ != nullptr) {
      closer_(id_);
      H5Eclear2(H5E_DEFAULT);  // A failed close in cleanup must not leak into the next status.
    }
    id_ = H5I_INVALID_HID;
  }

  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_HDF5_HANDLE_H_
