// tensor_ops: usine's tensors and kernels from an application's side.
//
// Lists the devices, then on the first GPU (or the cpu) draws a batch and a weight matrix
// from the counter-based generator, multiplies them (y = x w^T), and checks the result's
// norm against what the statistics predict. Exits non-zero with the error on failure.
//
//   tensor_ops            # on the first GPU, else the cpu
//   tensor_ops cpu        # on a device you name: cpu, cuda, cuda:N
#include <chrono>
#include <cmath>
#include <cstdio>

#include "runtime/core/device.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"
#include "runtime/kernels/kernels.h"

namespace {

absl::Status Run(usine::Device device) {
  using usine::DType;
  using usine::Tensor;
  constexpr int64_t kBatch = 512, kIn = 768, kOut = 3072;
  constexpr float kStd = 0.02f;
  ASSIGN_OR_RETURN(Tensor x, Tensor::Empty({kBatch, kIn}, DType::kF32, device));
  ASSIGN_OR_RETURN(Tensor w, Tensor::Empty({kOut, kIn}, DType::kF32, device));
  ASSIGN_OR_RETURN(Tensor y, Tensor::Empty({kBatch, kOut}, DType::kF32, device));
  RETURN_IF_ERROR(usine::RandomNormal(x, /*seed=*/1, /*offset=*/0));
  RETURN_IF_ERROR(usine::RandomNormal(w, /*seed=*/2, /*offset=*/0, 0.0f, kStd));

  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(usine::Matmul(x, w, y, {.transpose_b = true}));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSIGN_OR_RETURN(float norm, usine::L2NormToHost(y));

  // Each y element is a sum of kIn products of independent N(0,1) and N(0, kStd^2) values.
  const double expected = std::sqrt(double{kBatch} * kOut * kIn) * kStd;
  std::printf(
      "%s: y = x w^T, [%lld x %lld] x [%lld x %lld]^T in %.1f ms (%.1f GFLOP/s), "
      "|y| = %.2f, expected about %.2f\n",
      device.ToString().c_str(), static_cast<long long>(kBatch), static_cast<long long>(kIn),
      static_cast<long long>(kOut), static_cast<long long>(kIn), seconds * 1e3,
      2.0 * kBatch * kIn * kOut / seconds / 1e9, norm, expected);
  if (std::abs(norm - expected) > 0.02 * expected) {
    return absl::InternalError("the norm of y is not what the statistics predict");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("usine tensor_ops: %d CUDA device(s)%s%s\n", usine::CudaDeviceCount(),
              usine::CudaDeviceCount() == 0 ? " — " : "", usine::CudaUnavailableReason().c_str());
  for (const usine::CudaDeviceInfo& d : usine::ListCudaDevices()) {
    std::printf("  cuda:%d %s, %.1f GiB, sm_%d%d\n", d.index, d.name.c_str(),
                d.total_memory_bytes / double(1 << 30), d.compute_capability_major,
                d.compute_capability_minor);
  }
  absl::StatusOr<usine::Device> device =
      argc > 1 ? usine::Device::Parse(argv[1])
               : absl::StatusOr<usine::Device>(usine::CudaDeviceCount() > 0 ? usine::Device::Cuda(0)
                                                                            : usine::Device::Cpu());
  absl::Status status = device.ok() ? Run(*device) : device.status();
  if (!status.ok()) {
    std::fprintf(stderr, "tensor_ops: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("self-check passed\n");
  return 0;
}
