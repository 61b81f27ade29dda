// The CUDA runtime API's state (shim/cuda_runtime_api.h, internal/launch_limits.h): each kernel's
// dynamic shared memory limit and the last error.
#include <algorithm>
#include <map>

#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/internal/launch_limits.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr int kDefaultSharedLimit = 48 << 10;
constexpr int kMaxOptInSharedLimit = 227 << 10;  // An H100's; an A100 allows 163 KB.

std::map<const void*, int>& RaisedLimits() {
  static std::map<const void*, int> limits;
  return limits;
}

cudaError_t last_error = cudaSuccess;

}  // namespace

size_t DynamicSharedLimit(const void* kernel) {
  const auto it = RaisedLimits().find(kernel);
  return std::max(kDefaultSharedLimit, it == RaisedLimits().end() ? 0 : it->second);
}

void SetLastError(cudaError_t error) { last_error = error; }

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

cudaError_t SetMaxDynamicSharedBytes(const void* kernel, int bytes) {
  if (bytes < 0 || bytes > cuda_emulator_internal::kMaxOptInSharedLimit) {
    return cudaErrorInvalidValue;
  }
  cuda_emulator_internal::RaisedLimits()[kernel] = bytes;
  return cudaSuccess;
}

cudaError_t TakeLastError() {
  const cudaError_t error = cuda_emulator_internal::last_error;
  cuda_emulator_internal::last_error = cudaSuccess;
  return error;
}

}  // namespace usine::testing::cuda_emulator
