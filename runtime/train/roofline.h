// The two floors of a piece of work on a device: its FLOPs over the device's measured product
// rate and its bytes over the device's measured copy bandwidth. Work that takes k times the
// larger floor is k times slower than the hardware allows it; which floor is larger says
// whether faster products or fewer bytes would help it. step_cost.h gives a GPT step's work
// op by op.
//
//   ASSIGN_OR_RETURN(const double flops_per_s, MeasureProductRate(device, 8192));
//   ASSIGN_OR_RETURN(const double bytes_per_s, MeasureCopyBandwidth(device, 1 << 30));
//   const DeviceRates rates{flops_per_s, bytes_per_s};
//   const double floor_s = FloorSeconds({"lm_head forward", 1.27e12, 1.75e9}, rates);
//
// The measurements run on the device's default stream and wait for it; not for a device that
// other threads are using at the same time.
#ifndef USINE_RUNTIME_TRAIN_ROOFLINE_H_
#define USINE_RUNTIME_TRAIN_ROOFLINE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

#include "runtime/core/device.h"

namespace usine {

// What a piece of work does at least: FLOPs (2 per multiply-add) and bytes moved to and
// from memory (reads plus writes).
struct OpCost {
  std::string name;
  double flops = 0;
  double bytes = 0;
};

// What a device sustains: products, in FLOP/s, and memory traffic (reads plus writes), in
// bytes/s.
struct DeviceRates {
  double flops_per_second = 0;
  double bytes_per_second = 0;
};

// The least time `cost` takes on a device with `rates`: the slower of its products and its
// memory traffic, as if each ran at its rate and the two overlapped. REQUIRES: both rates > 0.
double FloorSeconds(const OpCost& cost, const DeviceRates& rates);

// The FLOP/s of a square product [n, n] x [n, n] by Matmul on `device`: on the cpu an f32
// sgemm cut over usine's threads (MeasureCpuMatmulFlops); on CUDA in the process's
// F32MatmulPrecision(), with bf16 operands and result under kBf16 (as the layers' products
// read and write them), f32 ones otherwise. The median of 5 timings after 2 warm-ups.
// InvalidArgument for n < 1; Internal if the clock saw no time pass; the device's errors.
[[nodiscard]] absl::StatusOr<double> MeasureProductRate(Device device, int64_t n);

// The memory traffic of copying `bytes` from one buffer of `device` to another, in bytes/s
// (each byte counted read and written: 2 x bytes per copy): on CUDA a device-to-device Copy,
// on the cpu memcpy cut over usine's threads (ParallelFor). The median of 5 timings after 2
// warm-ups. InvalidArgument for bytes < 4 or not a multiple of 4; Internal if the clock saw no
// time pass; the device's errors.
[[nodiscard]] absl::StatusOr<double> MeasureCopyBandwidth(Device device, int64_t bytes);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_ROOFLINE_H_
