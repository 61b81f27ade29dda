// What a launch is checked against, as CUDA's runtime would (cuda_runtime_api.cc): each kernel's
// dynamic shared memory limit (48 KB, or what cudaFuncSetAttribute raised it to) and the last
// error (left for cudaGetLastError, per host thread, by a call or launch that CUDA refuses).
//
//   if (bytes > DynamicSharedLimit(kernel)) { SetLastError(cudaErrorInvalidValue); return; }
//   return SetLastError(cudaErrorInvalidValue);  // From a runtime API call.
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_LAUNCH_LIMITS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_LAUNCH_LIMITS_H_

#include <cstddef>

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator_internal {

size_t DynamicSharedLimit(const void* kernel);
// Leaves `error` (unless cudaSuccess) for cudaGetLastError; returns it.
cudaError_t SetLastError(cudaError_t error);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_LAUNCH_LIMITS_H_
